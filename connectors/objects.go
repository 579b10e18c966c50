package connectors

import (
	"fmt"
	"sync"

	"github.com/kecis/kecis/connectors/store"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// ObjectRef names one of the provider's objects: an order, an approval, and
// the objects of later services (KECIS §13.3).
type ObjectRef = store.ObjectRef

// ObjectRule declares what a service does with the provider's objects, so
// that the Handler records every object's owner and authorises every
// operation on an existing one against it (KECIS §13.3). A service group
// registers its rules with RegisterObjectRule next to its functions (the
// card service does for card:approve, cancel, refund and inquire); the
// Handler applies them to every function serving that service — the Go
// SDK's and the sidecar's alike.
//
// The owner is the request's caller (KECIS §13.1): OnBehalfOf, else the
// Issuer. A request that creates claims its objects for the caller before
// the provider's function runs (so that the owner can inquire a pending
// one), and the objects its answer names after success. A request that
// operates on existing objects is answered NotFound, without running the
// provider's function, when one of them is unknown or another owner's:
// the two answers are the same, byte for byte, so that existence does not
// leak. An answer naming an object of another owner is replaced by
// NotFound as well.
type ObjectRule struct {
	// Creates marks a service that creates objects (card:approve). Its
	// request's PerOwner references (the merchant's order number) are
	// claimed for the caller; any other reference must be the caller's.
	// Otherwise every reference of the request must be the caller's.
	Creates bool
	// Refs lists the objects a payload names. It reads the request's
	// payload and, after the function ran, the answer's; nil payloads
	// are not passed to it.
	Refs func(p *ecml.Payload) []ObjectRef
	// NotFound is the answer the service gives for an unknown object.
	NotFound saml.Status
}

var (
	objectRulesMu sync.RWMutex
	objectRules   = map[string]ObjectRule{}
)

// RegisterObjectRule declares the object rule of service. It panics on an
// incomplete rule or a second rule for the same service: registration
// happens at start-up (a service group's init), and a mistake there must
// stop the program.
func RegisterObjectRule(service string, r ObjectRule) {
	if err := r.check(service); err != nil {
		panic(err.Error())
	}
	objectRulesMu.Lock()
	defer objectRulesMu.Unlock()
	if _, dup := objectRules[service]; dup {
		panic(fmt.Sprintf("connectors: object rule of %s registered twice", service))
	}
	objectRules[service] = r
}

// ObjectRuleOf returns the registered object rule of service.
func ObjectRuleOf(service string) (ObjectRule, bool) {
	objectRulesMu.RLock()
	defer objectRulesMu.RUnlock()
	r, ok := objectRules[service]
	return r, ok
}

func (r ObjectRule) check(service string) error {
	switch {
	case service == "":
		return fmt.Errorf("connectors: an object rule without a service")
	case r.Refs == nil:
		return fmt.Errorf("connectors: the object rule of %s has no Refs", service)
	case r.NotFound.Code != saml.StatusRequester && r.NotFound.Code != saml.StatusResponder:
		return fmt.Errorf("connectors: the object rule of %s answers NotFound with %q, not Requester or Responder", service, r.NotFound.Code)
	}
	return nil
}

// requestObjects is what a request does with objects: the creating
// service's own references are claimed, every other one checked.
func (r ObjectRule) requestObjects(owner string, p *ecml.Payload) store.Objects {
	o := store.Objects{Owner: owner}
	if p == nil {
		return o
	}
	for _, ref := range r.Refs(p) {
		if ref.ID == "" {
			continue
		}
		if r.Creates && ref.PerOwner {
			o.Claim = append(o.Claim, ref)
		} else {
			o.Check = append(o.Check, ref)
		}
	}
	return o
}

// answerObjects is what an answer reveals: the objects the provider
// assigned (an approval number). A successful answer to a request that
// created, or that named objects of the caller's, claims them for the
// caller (the approval number of an approve, or of a pending approve that
// an inquire by order resolved); any other answer may only name the
// caller's own. An owner's own IDs (order numbers) say nothing in an
// answer: they are scoped to the caller.
func (r ObjectRule) answerObjects(owner string, req store.Objects, resp *Response) store.Objects {
	o := store.Objects{Owner: owner}
	if resp == nil || resp.Payload == nil {
		return o
	}
	adopt := resp.Status.OK() && (r.Creates || len(req.Check) > 0)
	for _, ref := range r.Refs(resp.Payload) {
		if ref.ID == "" || ref.PerOwner {
			continue
		}
		if adopt {
			o.Claim = append(o.Claim, ref)
		} else {
			o.Check = append(o.Check, ref)
		}
	}
	return o
}
