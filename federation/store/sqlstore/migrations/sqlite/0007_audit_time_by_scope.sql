-- What one approval costs the hub's store (KECIS §12.3), continued: every
-- audit record's entry in hub_audit_time was one more index page each
-- commit writes (a 4 KB WAL frame) and 20-odd bytes kept for good, for a
-- listing by time alone, which no request makes. That listing is served by
-- hub_audit_scope (scope_id, time) instead, one range per scope
-- (ListAudit: scope_id IN (SELECT id FROM hub_audit_scopes)): slower than
-- one range, never a scan of the whole log.
DROP INDEX hub_audit_time;
