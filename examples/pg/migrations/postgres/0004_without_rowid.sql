-- SQLite's 0004 makes the counters, the daily totals and the idempotency
-- records WITHOUT ROWID tables; PostgreSQL has no rowid (a table is a heap
-- and its primary key one index either way), so its schema stays as it is.
SELECT 1;
