-- What one approval costs the hub's store (KECIS §12.3), continued.
--
-- (SQLite rebuilds hub_replay and hub_idempotency WITHOUT ROWID here; a
-- PostgreSQL table is a heap and its primary key an index in any case.)
--
-- No reader lists audit records by kind alone (the registry's conformance
-- records are listed by entity and kind: hub_audit_entity serves it), so the
-- kind index, an entry per record kept for good, goes.
DROP INDEX hub_audit_kind;
