-- What one approval costs the hub's store (KECIS §12.3), continued: the
-- pruning found idle idempotency entries through hub_idempotency_idle, an
-- entry for every row, which each claim added to and each release moved:
-- one more index page each commit wrote. Idle entries are now found by two
-- partial indexes (Store.prune): the answered ones by hub_idempotency_done,
-- which only a release that answers adds to, the others by
-- hub_idempotency_leases (lease_expires, state in_flight), which the
-- in-flight count already reads. A claim writes one index, not two.
DROP INDEX hub_idempotency_idle;
CREATE INDEX hub_idempotency_done ON hub_idempotency (updated_at) WHERE state = 'done';
