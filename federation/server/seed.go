package server

import (
	"context"
	"errors"
	"time"

	"github.com/kecis/kecis/federation/store"
)

// SeedActive stores a participant from its metadata as active, or brings
// its record up to date: what an operator's approval would leave. It is
// for hubs whose participants are decided outside the registry's
// lifecycle — the demo federation, and the hub the conformance suite runs
// for a participant under test — never for a production hub.
func SeedActive(ctx context.Context, st store.Store, md []byte, now time.Time) error {
	p, err := Describe(md)
	if err != nil {
		return err
	}
	now = now.UTC()
	p.Status, p.Metadata, p.CreatedAt, p.UpdatedAt = store.StatusActive, md, now, now
	err = st.CreateParticipant(ctx, p)
	if errors.Is(err, store.ErrExists) {
		cur, gerr := st.GetParticipant(ctx, p.EntityID)
		if gerr != nil {
			return gerr
		}
		if string(cur.Metadata) == string(md) && cur.Status == store.StatusActive {
			return nil
		}
		p.Version, p.CreatedAt = cur.Version, cur.CreatedAt
		return st.UpdateParticipant(ctx, p)
	}
	return err
}
