package saml

// IdemResult is what taking an idempotency key found (KECIS §7.1): the one
// vocabulary of the hub's guard, which leases keys and never stores an
// outcome, and of the provider's authority, which stores outcomes. Each
// side finds a subset: the hub never finds IdemDone (it forwards such a
// retry as IdemReacquired, and the provider answers it). The values are
// also the hub's metric labels.
type IdemResult string

const (
	// IdemAcquired: a new key; the caller holds it and runs the request
	// (the provider) or forwards it (the hub).
	IdemAcquired IdemResult = "acquired"
	// IdemReacquired: a known key with the same fingerprint that is free
	// again — the lease of a crashed attempt ran out, or, at the hub, the
	// earlier attempt was answered; the caller holds it again and runs
	// (forwards) the retry.
	IdemReacquired IdemResult = "reacquired"
	// IdemDone: the provider finished the key with the same fingerprint;
	// the retry gets the stored outcome, freshly signed.
	IdemDone IdemResult = "done"
	// IdemInFlight: another attempt holds the key. A refusal.
	IdemInFlight IdemResult = "in_flight"
	// IdemMismatch: the key was used with a different request (another
	// fingerprint). A refusal.
	IdemMismatch IdemResult = "mismatch"
)

// Refusal returns the signed answer to a request that r refuses and true
// (KECIS §6.2, §7.1, the statuses of the IETF Idempotency-Key draft): the
// same status whether the hub's guard or the provider refuses. For a
// result that refuses nothing it returns the zero Status and false.
func (r IdemResult) Refusal() (Status, bool) {
	switch r {
	case IdemInFlight:
		return Status{Code: StatusRequester, SubCode: CodeInFlight,
			Message: "a request with this idempotency key is being processed"}, true
	case IdemMismatch:
		return Status{Code: StatusRequester, SubCode: CodeIdempotencyConflict,
			Message: "the idempotency key was used with a different request"}, true
	}
	return Status{}, false
}

// IdemScope is the scope of a request's idempotency key (KECIS §7.1): the
// issuer, and the OnBehalfOf merchant when there is one.
func IdemScope(issuer, onBehalfOf string) string {
	if onBehalfOf == "" {
		return issuer
	}
	return issuer + "|" + onBehalfOf
}
