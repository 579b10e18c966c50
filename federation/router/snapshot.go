package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kecis/kecis/federation/store"
	"github.com/kecis/kecis/saml/metadata"
)

// SnapshotValidity bounds a stored snapshot's validUntil: evidence is
// checked at the time of the messages, long after.
const SnapshotValidity = 10 * 365 * 24 * time.Hour

// ensureSnapshot stores, once per participant version, the participant's
// descriptor signed by the hub: the metadata in force, kept so that a
// dispute can be settled with the signed messages and the metadata of their
// time alone — a rolled-over key still verifies.
func (rt *Router) ensureSnapshot(ctx context.Context, e *Entry) {
	key := fmt.Sprintf("%s@%d", e.P.EntityID, e.P.Version)
	rt.mu.Lock()
	if rt.snapshots == nil {
		rt.snapshots = map[string]bool{}
	}
	done := rt.snapshots[key]
	rt.mu.Unlock()
	if done {
		return
	}
	ed, err := metadata.Parse(e.P.Metadata)
	if err != nil {
		rt.log.WarnContext(ctx, "snapshot: stored metadata", "entity", e.P.EntityID, "err", err)
		return
	}
	from := e.P.UpdatedAt
	if from.IsZero() {
		from = rt.now()
	}
	ed.ID, ed.ValidUntil, ed.CacheDuration = "", from.Add(SnapshotValidity), 0
	signed, err := metadata.SignEntity(ed, rt.cfg.Signer)
	if err != nil {
		rt.log.WarnContext(ctx, "snapshot: signing", "entity", e.P.EntityID, "err", err)
		return
	}
	err = rt.st.PutSnapshot(context.WithoutCancel(ctx), &store.MetadataSnapshot{EntityID: e.P.EntityID, Version: e.P.Version, ValidFrom: from, Signed: signed})
	if err != nil && !errors.Is(err, store.ErrExists) {
		rt.log.WarnContext(ctx, "snapshot: store", "entity", e.P.EntityID, "err", err)
		return
	}
	rt.mu.Lock()
	rt.snapshots[key] = true
	rt.mu.Unlock()
}
