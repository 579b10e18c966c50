package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"sync"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/store"
)

// An audit record's scope (migration 0006, KECIS §12.3): what the records
// of one exchange between two participants share — kind, actor, entity,
// and the transaction ID's prefix — stored once in hub_audit_scopes and
// named by each record, so that a record kept for good does not repeat two
// entityIDs and a transaction ID.
type scopeKey struct {
	kind, actor, entity string
	// txPrefix is the transaction ID's part before "|" + the idempotency
	// key (the request's issuer: KECIS §12.3), "" when the record's
	// transaction ID is not of that form.
	txPrefix string
}

// splitTx returns r's scope and the transaction ID its row stores: "" when
// the scope's prefix gives it (prefix + "|" + IdempotencyKey), else TxID.
func splitTx(r *store.AuditRecord) (scopeKey, string) {
	k := scopeKey{kind: r.Kind, actor: r.Actor, entity: r.EntityID}
	if key := r.IdempotencyKey; key != "" && len(r.TxID) > len(key)+1 && strings.HasSuffix(r.TxID, "|"+key) {
		k.txPrefix = r.TxID[:len(r.TxID)-len(key)-1]
		return k, ""
	}
	return k, r.TxID
}

// joinTx is splitTx's reverse: the transaction ID of a record.
func joinTx(txPrefix, txID, key string) string {
	if txPrefix != "" {
		return txPrefix + "|" + key
	}
	return txID
}

// txKeys are the idempotency keys a record of transaction tx may carry
// with its ID derived (splitTx): what follows each "|" that has something
// before and after it.
func txKeys(tx string) []string {
	var keys []string
	for i := 1; i < len(tx)-1; i++ {
		if tx[i] == '|' {
			keys = append(keys, tx[i+1:])
		}
	}
	return keys
}

// scopes caches the scopes' row IDs (rows never change).
type scopes struct {
	mu   sync.Mutex
	byID map[scopeKey]int64
}

// saveScope returns the ID of k's row in q, inserting it when new
// (idempotent: two replicas saving one scope share its row). The ID is
// cached only once the transaction commits (commitScopes): a rolled-back
// row must not be named again.
func (s *Store) saveScope(ctx context.Context, q sqldb.Queryer, k scopeKey) (int64, error) {
	s.scopes.mu.Lock()
	id, ok := s.scopes.byID[k]
	s.scopes.mu.Unlock()
	if ok {
		return id, nil
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO hub_audit_scopes (kind, actor, entity_id, tx_prefix)
		VALUES ($1, $2, $3, $4) ON CONFLICT (kind, actor, entity_id, tx_prefix) DO NOTHING`,
		k.kind, k.actor, k.entity, k.txPrefix); err != nil {
		return 0, fmt.Errorf("audit scope: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT id FROM hub_audit_scopes
		WHERE kind = $1 AND actor = $2 AND entity_id = $3 AND tx_prefix = $4`,
		k.kind, k.actor, k.entity, k.txPrefix).Scan(&id); err != nil {
		return 0, fmt.Errorf("audit scope: %w", err)
	}
	return id, nil
}

// commitScopes caches, after the commit, the scopes' row IDs the committed
// records named.
func (s *Store) commitScopes(es []*encodedAudit, ids []int64) {
	s.scopes.mu.Lock()
	defer s.scopes.mu.Unlock()
	if s.scopes.byID == nil {
		s.scopes.byID = map[scopeKey]int64{}
	}
	for i, e := range es {
		s.scopes.byID[e.scope] = ids[i]
	}
}
