-- The daily limit's running total: what each merchant's live transactions
-- of a business day add up to (amount − cancelled_amount of every
-- transaction not DECLINED or FAILED), kept in the transaction that
-- changes one of them, so that the limit check reads one row instead of
-- summing the day's transactions (whose cost grew with the day's count).
-- Filled once here from the transactions already stored.
CREATE TABLE pgw_daily_totals (
	mid      TEXT   NOT NULL REFERENCES pgw_merchants (mid),
	biz_date TEXT   NOT NULL,                  -- YYYYMMDD in the PG's zone
	used     BIGINT NOT NULL,                  -- won
	PRIMARY KEY (mid, biz_date)
);

INSERT INTO pgw_daily_totals (mid, biz_date, used)
	SELECT mid, biz_date, SUM(amount - cancelled_amount) FROM pgw_transactions
	WHERE status NOT IN ('DECLINED', 'FAILED') GROUP BY mid, biz_date;
