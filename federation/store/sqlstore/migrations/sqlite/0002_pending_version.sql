-- A participant's pending metadata version (KECIS §13.6, §12.6): a change of
-- what it is trusted with, exactly as submitted, waiting for an operator's
-- decision. The participant's other columns and child rows stay the active
-- version. Both columns are NULL when nothing is pending.
ALTER TABLE hub_participants ADD COLUMN pending_metadata BLOB;
ALTER TABLE hub_participants ADD COLUMN pending_requested_at INTEGER;
