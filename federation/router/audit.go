package router

import (
	"encoding/json"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

// auditRecord is the audit record of a message the router relays (KECIS
// §12.3), linked to its transaction: Issuer|IdempotencyKey, else the
// request's ID. The request's issuer and destination are the record's
// Actor and EntityID; Detail does not repeat them (every record is kept
// for good, KECIS §12.3).
func (rt *Router) auditRecord(kind string, req *saml.ServiceRequest, dest string, msg []byte, st *saml.Status) *store.AuditRecord {
	d := map[string]any{"service": req.Service}
	if req.OnBehalfOf != "" {
		d["on_behalf_of"] = req.OnBehalfOf
	}
	if st != nil {
		d["status"], d["sub"] = st.Code, st.SubCode
	}
	tx := req.ID
	if req.IdempotencyKey != "" {
		tx = req.Issuer + "|" + req.IdempotencyKey
	}
	return &store.AuditRecord{Time: rt.now(), Kind: kind, Actor: req.Issuer, EntityID: dest, TxID: tx,
		RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Detail: detailJSON(d), Message: msg}
}

func detailJSON(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
