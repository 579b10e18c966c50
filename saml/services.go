package saml

import "strings"

// ServicePrefix starts every KECIS service URI: urn:kecis:service:<group>:<operation> (KECIS §2.6).
const ServicePrefix = "urn:kecis:service:"

// ServiceURI returns the URI of group's operation.
func ServiceURI(group, operation string) string { return ServicePrefix + group + ":" + operation }

// SplitService returns the group and operation of a service URI.
func SplitService(uri string) (group, operation string, ok bool) {
	rest, found := strings.CutPrefix(uri, ServicePrefix)
	if !found {
		return "", "", false
	}
	group, operation, ok = strings.Cut(rest, ":")
	if !ok || group == "" || operation == "" || strings.ContainsAny(operation, ": \t\n") {
		return "", "", false
	}
	return group, operation, true
}

// readOnlyOperations change no state; every other operation does and needs
// an idempotency key (KECIS §7.1). Unknown operations count as mutations:
// asking for a key that was not needed is harmless, the reverse is not.
var readOnlyOperations = map[string]bool{
	"inquire": true,
	"query":   true,
	"status":  true,
	// The holder checks of KECIS §15.9 (account:holder-inquiry) and
	// §15.10 (phone:holder-check) only read.
	"holder-inquiry": true,
	"holder-check":   true,
}

// IsMutation reports whether the service changes state at its provider.
func IsMutation(service string) bool {
	_, op, ok := SplitService(service)
	if !ok {
		return true
	}
	return !readOnlyOperations[op]
}
