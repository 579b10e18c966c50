package router

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/kecis/kecis/saml"
)

// fingerprint is the HMAC of the public fields of a request: service,
// recipient, amounts, currency, order and party identifiers — never
// ciphertext, which differs on every encryption.
func (rt *Router) fingerprint(req *saml.ServiceRequest, dest string) []byte {
	m := hmac.New(sha256.New, rt.cfg.IdemKey)
	w := func(s string) { fmt.Fprintf(m, "%d:%s;", len(s), s) }
	w(req.Service)
	w(dest)
	w(req.OnBehalfOf)
	if req.Routing != nil {
		w(req.Routing.CardBIN + "/" + req.Routing.CardLast4 + "/" + req.Routing.BankCode)
	}
	if p := req.Payload; p != nil && p.Ecom != nil {
		e := p.Ecom
		w(e.ConsumerOrderID)
		w(e.Merchant)
		if t := e.Transaction; t != nil {
			w(t.Amount)
			w(t.Currency)
			w(t.Type)
			if t.ID != nil {
				w(fmt.Sprintf("%+v", *t.ID))
			}
		}
	}
	return m.Sum(nil)
}
