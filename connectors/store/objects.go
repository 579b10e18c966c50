package store

// ObjectRef names one of the provider's objects (KECIS §13.3): an order, an
// approval, and the objects of later services.
type ObjectRef struct {
	// Kind is the object's type, "<service group>:<object>" (card:order,
	// card:approval).
	Kind string
	// ID identifies the object.
	ID string
	// PerOwner marks an ID of the owner's own choosing (a merchant's order
	// number): two owners may use the same ID, each for an object of its
	// own. Otherwise the provider assigned the ID (an approval number) and
	// it names one object.
	PerOwner bool
}

// Objects is what one request does with the provider's objects, decided in
// one transaction (KECIS §13.3).
type Objects struct {
	// Owner is the request's caller (KECIS §13.1).
	Owner string
	// Claim lists the objects the request creates, or that its answer
	// revealed: they are recorded for Owner. One the provider assigned that
	// is recorded for another owner is refused (ErrNotFound).
	Claim []ObjectRef
	// Check lists the objects the request operates on: each must be
	// recorded for Owner.
	Check []ObjectRef
}

// IsZero reports whether o names no object.
func (o Objects) IsZero() bool { return len(o.Claim) == 0 && len(o.Check) == 0 }
