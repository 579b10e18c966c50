// Package vcn is the issuer's virtual card number service (KECIS §15.4),
// after the 2010 virtual card number paper: the issuer hands out 16-digit
// numbers that stand for a real card, so that the merchant and the PG never
// hold the real one, and de-tokenises them inside its own approvals.
//
// A virtual number is the 6-digit virtual BIN of the card's type (type
// codes 0 credit, 1 check, 2 prepaid, 6 other; the paper's credit BIN
// 404143 by default), the day of the year of issue in the issuer's time
// zone (Asia/Seoul; 11 February is 042), a 6-digit serial and the Luhn
// check digit: 404143 042 nnnnnn c.
//
// The serial comes from a pool by the paper's seed and accumulator: per BIN
// and day the database keeps a seed (prime to the pool size), an
// accumulated value, a seed count and a total count, and the n-th draw takes
// the index accumulated + seed count × seed (mod the pool size), which walks
// the whole pool once. The index goes through a keyed permutation of the
// pool (a Feistel network with cycle walking, keyed by PoolKey, the BIN and
// the day), so a day's serials tell nothing of the next. The day's counter
// row is updated atomically in the issuing transaction, so parallel
// issuers, in one process or several, on SQLite or PostgreSQL, never draw
// one index twice; and the database's primary key on the number (as a keyed
// hash) refuses a second live row for one number: the day of the year
// repeats every year, so a number lives less than a year (MaxLifetime), an
// expired row is replaced, and an exhausted pool is ErrExhausted, never a
// duplicate.
//
// The mapping to the real card lives only in the issuer's database: the
// real number sealed (Sealer) with the virtual number's hash as associated
// data, both numbers findable only by keyed hashes (HashKey). No row, log
// line or error holds a card number in clear; logs show numbers masked.
//
// Each number carries controls the issuer enforces when it approves
// (AuthorizeTx, inside the issuer's approval transaction): single or multi
// use, a merchant lock, an amount cap in a currency, an expiry. By default
// (DefaultControls) a number is single use, locked to its merchant and lives
// 30 minutes.
//
// The package imports only the standard library, ecml and
// connectors/sqlstore; a program links the SQL drivers it uses.
package vcn
