package router

import (
	"context"
	"encoding/json"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml"
)

func (rt *Router) audit(ctx context.Context, kind string, req *saml.ServiceRequest, dest string, msg []byte, st *saml.Status) {
	d := map[string]any{"service": req.Service, "issuer": req.Issuer, "destination": dest}
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
	rec := &store.AuditRecord{Time: rt.now(), Kind: kind, Actor: req.Issuer, EntityID: dest, TxID: tx,
		RequestID: req.ID, IdempotencyKey: req.IdempotencyKey, Detail: detailJSON(d), Message: msg}
	if err := rt.st.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
		rt.log.ErrorContext(ctx, "audit", "err", err)
	}
}

func detailJSON(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
