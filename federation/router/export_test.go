package router

import "github.com/kecis/kecis/saml"

// Fingerprint exposes the idempotency fingerprint to the tests.
func (rt *Router) Fingerprint(req *saml.ServiceRequest, dest string) []byte {
	return rt.fingerprint(req, dest)
}

// Undelivered exposes the failover rule to the tests.
var Undelivered = undelivered
