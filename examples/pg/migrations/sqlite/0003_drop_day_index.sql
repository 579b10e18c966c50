-- pgw_transactions_day (mid, biz_date) served the daily limit's sum of the
-- day's transactions, which the running total of 0002 (pgw_daily_totals)
-- replaced: no query reads it any more, and every new transaction wrote
-- one more index page for it.
DROP INDEX IF EXISTS pgw_transactions_day;
