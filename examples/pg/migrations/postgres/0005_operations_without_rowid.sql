-- SQLite's 0005 makes the gateway operations a WITHOUT ROWID table;
-- PostgreSQL has no rowid, so its schema stays as it is.
SELECT 1;
