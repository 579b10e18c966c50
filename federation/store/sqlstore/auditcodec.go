package sqlstore

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	sqldb "github.com/kecis/kecis/connectors/sqlstore"
	"github.com/kecis/kecis/federation/store"
)

// How hub_audit.message is stored (migration 0003, KECIS §12.3): a signed
// message is 3 to 6 KB, most of it what every message of its kind between
// the same two participants repeats — namespaces, algorithm URIs, the
// signer's certificate, endpoint URLs. The first message of a scope (kind,
// actor, entity) is kept whole once as that scope's dictionary, and every
// message is stored zlib-compressed (RFC 1950) with its scope's dictionary
// preset: what remains is mostly the fresh IDs, digests, signature values
// and ciphertext. zlib carries the dictionary's and the original's
// Adler-32, both checked on reading, so a record decoded with the wrong
// dictionary or damaged is an error, never other bytes. Readers get the
// exact original bytes: evidence bundles verify as before.
//
// Since migration 0006 a record's detail travels in the same stream, before
// its message (codec 2): the detail of a scope's records differs little
// from one to the next (the service, the status, the merchant), so that it
// costs a few bytes instead of its length.
const (
	codecRaw        = 0 // message as is, detail in its column
	codecZlib       = 1 // message zlib-compressed with the preset dictionary dict_id
	codecZlibDetail = 2 // uvarint(len(detail)) || detail || message, zlib-compressed with dict_id; the detail column ''
)

const (
	// minCompress: shorter messages are stored as they are.
	minCompress = 256
	// maxDict is DEFLATE's window: a longer dictionary is cut to it.
	maxDict = 32 << 10
	// maxMessage bounds what decoding a record may produce.
	maxMessage = 64 << 20
)

// renewDict: a message that compresses to more than 1/renewDict of its size
// against its scope's dictionary (its shape changed: a key rollover, a new
// service) becomes the scope's dictionary, so that a stale dictionary costs
// one message, not every one after it.
const renewDict = 2

// dict is one dictionary; id is 0 until the store knows its row.
type dict struct {
	scope string
	sum   [sha256.Size]byte
	data  []byte

	mu      sync.Mutex
	id      int64
	writers sync.Pool // *zlib.Writer preset with data
}

func newDict(scope string, data []byte) *dict {
	if len(data) > maxDict {
		data = data[len(data)-maxDict:] // DEFLATE reaches back 32 KB: the end is what it uses
	}
	data = bytes.Clone(data)
	return &dict{scope: scope, data: data, sum: sha256.Sum256(data)}
}

func (d *dict) rowID() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.id
}

func (d *dict) setRowID(id int64) {
	d.mu.Lock()
	d.id = id
	d.mu.Unlock()
}

// compress returns msg zlib-compressed with d preset.
func (d *dict) compress(msg []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(msg) / 4)
	w, _ := d.writers.Get().(*zlib.Writer)
	if w == nil {
		var err error
		if w, err = zlib.NewWriterLevelDict(&out, zlib.DefaultCompression, d.data); err != nil {
			panic(err) // only for an invalid level
		}
	} else {
		w.Reset(&out)
	}
	_, _ = w.Write(msg) // a bytes.Buffer does not fail
	_ = w.Close()
	d.writers.Put(w)
	return out.Bytes()
}

// decompress reverses compress with the dictionary data.
func decompress(data, dictData []byte) ([]byte, error) {
	r, err := zlib.NewReaderDict(bytes.NewReader(data), dictData)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxMessage+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxMessage {
		return nil, errors.New("decoded message exceeds the limit")
	}
	return out, nil
}

// dicts caches the dictionaries: the current one of each scope, and the
// data of each row read (rows never change).
type dicts struct {
	mu      sync.Mutex
	byScope map[string]*dict
	byID    map[int64][]byte
}

func auditScope(r *store.AuditRecord) string {
	return r.Kind + " " + r.Actor + " " + r.EntityID
}

// encodedAudit is an audit record ready for its INSERT: its scope and the
// transaction ID it stores (splitTx), the detail and message as stored,
// and the dictionary its row must name (saved in the same transaction when
// new).
type encodedAudit struct {
	rec    *store.AuditRecord
	scope  scopeKey
	txID   string
	detail string
	codec  int
	data   []byte
	dict   *dict
}

// frameDetail is codec 2's plain text: the detail's length, the detail,
// the message.
func frameDetail(detail string, msg []byte) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(detail)+len(msg))
	b = binary.AppendUvarint(b, uint64(len(detail)))
	b = append(b, detail...)
	return append(b, msg...)
}

// unframeDetail reverses frameDetail.
func unframeDetail(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, errors.New("the detail's length does not fit")
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// encodeAudit compresses r's detail and message against its scope's
// dictionary, outside any transaction (the CPU work does not hold the
// write lock). A message shorter than minCompress (or none: a registry
// event) is stored as it is, with its detail in its column.
func (s *Store) encodeAudit(ctx context.Context, r *store.AuditRecord) (*encodedAudit, error) {
	e := &encodedAudit{rec: r, detail: r.Detail, codec: codecRaw, data: sqldb.Bytes(r.Message)}
	e.scope, e.txID = splitTx(r)
	if len(r.Message) < minCompress {
		return e, nil
	}
	plain := frameDetail(r.Detail, r.Message)
	scope := auditScope(r)
	d, err := s.currentDict(ctx, scope)
	if err != nil {
		return nil, err
	}
	var c []byte
	if d != nil {
		c = d.compress(plain)
	}
	if d == nil || len(c)*renewDict > len(plain) {
		// No dictionary yet, or one this record no longer resembles: the
		// record becomes its scope's dictionary.
		d = newDict(scope, plain)
		c = d.compress(plain)
	}
	e.codec, e.data, e.dict, e.detail = codecZlibDetail, c, d, ""
	return e, nil
}

// currentDict returns the scope's dictionary: cached, else the scope's
// latest row (another replica's, or before a restart), else nil.
func (s *Store) currentDict(ctx context.Context, scope string) (*dict, error) {
	s.dicts.mu.Lock()
	d := s.dicts.byScope[scope]
	s.dicts.mu.Unlock()
	if d != nil {
		return d, nil
	}
	var (
		id   int64
		data []byte
	)
	err := sqldb.RetryRead(ctx, func() error {
		return s.db.QueryRowContext(ctx, `SELECT id, dict FROM hub_audit_dicts WHERE scope = $1 ORDER BY id DESC LIMIT 1`,
			scope).Scan(&id, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit dictionary of %q: %w", scope, err)
	}
	d = newDict(scope, data)
	d.setRowID(id)
	s.dicts.mu.Lock()
	if s.dicts.byScope == nil {
		s.dicts.byScope = map[string]*dict{}
	}
	if cur := s.dicts.byScope[scope]; cur != nil {
		d = cur
	} else {
		s.dicts.byScope[scope] = d
	}
	s.dicts.mu.Unlock()
	return d, nil
}

// adoptDicts records, after a commit, the dictionaries its records used as
// their scopes' current ones.
func (s *Store) adoptDicts(es []*encodedAudit) {
	s.dicts.mu.Lock()
	defer s.dicts.mu.Unlock()
	if s.dicts.byScope == nil {
		s.dicts.byScope = map[string]*dict{}
	}
	for _, e := range es {
		if e.dict != nil {
			s.dicts.byScope[e.dict.scope] = e.dict
		}
	}
}

// saveDict makes sure d has its row (idempotent: the row is found by the
// dictionary's SHA-256, so two replicas saving the same one share it) and
// returns its ID. The ID is remembered only once the transaction commits
// (commitDicts): a rolled-back row must not be named again.
func (s *Store) saveDict(ctx context.Context, q sqldb.Queryer, d *dict, now time.Time) (int64, error) {
	if id := d.rowID(); id != 0 {
		return id, nil
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO hub_audit_dicts (sha256, scope, dict, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING`, d.sum[:], d.scope, d.data, s.ts(now)); err != nil {
		return 0, fmt.Errorf("audit dictionary: %w", err)
	}
	var (
		id     int64
		stored []byte
	)
	if err := q.QueryRowContext(ctx, `SELECT id, dict FROM hub_audit_dicts WHERE sha256 = $1`, d.sum[:]).Scan(&id, &stored); err != nil {
		return 0, fmt.Errorf("audit dictionary: %w", err)
	}
	if !bytes.Equal(stored, d.data) {
		return 0, errors.New("audit dictionary: a stored dictionary has the same SHA-256 and other bytes")
	}
	return id, nil
}

// insertAudit appends one encoded record in q and sets its ID; the
// dictionary's and the scope's rows are saved first when new. It returns
// the dictionary ID used (0: none), for commitDicts, and the scope's ID,
// for commitScopes.
func (s *Store) insertAudit(ctx context.Context, q sqldb.Queryer, e *encodedAudit, now time.Time) (dictUsed, scopeID int64, err error) {
	r := e.rec
	var dictID any
	if e.dict != nil {
		id, err := s.saveDict(ctx, q, e.dict, now)
		if err != nil {
			return 0, 0, err
		}
		dictID, dictUsed = id, id
	}
	if scopeID, err = s.saveScope(ctx, q, e.scope); err != nil {
		return 0, 0, err
	}
	var id int64
	if err := q.QueryRowContext(ctx, s.insertAuditSQL(),
		s.ts(r.Time), scopeID, e.txID, r.RequestID, r.IdempotencyKey,
		e.detail, e.data, e.codec, dictID).Scan(&id); err != nil {
		return 0, 0, err
	}
	r.ID = id
	return dictUsed, scopeID, nil
}

// insertAuditSQL is the INSERT of an audit record. On PostgreSQL the
// record's ID comes from its identity column. On SQLite (migration 0009)
// it is the one after both the highest ID in the table and the highest
// ever archived (hub_audit_archived), so that no ID is given twice, as
// AUTOINCREMENT promised, without rewriting sqlite_sequence's page in
// every commit: MAX(id) is one seek in the table's b-tree.
func (s *Store) insertAuditSQL() string {
	if s.db.Dialect == sqldb.SQLite {
		return `INSERT INTO hub_audit
		(id, time, scope_id, tx_id, request_id, idempotency_key, detail, message, codec, dict_id)
		VALUES (MAX(COALESCE((SELECT MAX(id) FROM hub_audit), 0), COALESCE((SELECT max_id FROM hub_audit_archived WHERE one = 1), 0)) + 1,
			$1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`
	}
	return `INSERT INTO hub_audit
		(time, scope_id, tx_id, request_id, idempotency_key, detail, message, codec, dict_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`
}

// commitDicts remembers, after the commit, the row IDs of the
// dictionaries the committed records used, and makes them their scopes'
// current ones.
func (s *Store) commitDicts(es []*encodedAudit, ids []int64) {
	for i, e := range es {
		if e.dict != nil && ids[i] != 0 {
			e.dict.setRowID(ids[i])
		}
	}
	s.adoptDicts(es)
}

// decodeMessages replaces the stored form of each record's message by the
// original bytes; rows holds each record's codec and dictionary ID.
func (s *Store) decodeMessages(ctx context.Context, recs []*store.AuditRecord, codecs []int, dictIDs []int64) error {
	need := map[int64]bool{}
	s.dicts.mu.Lock()
	for i, c := range codecs {
		if c == codecZlib || c == codecZlibDetail {
			if _, ok := s.dicts.byID[dictIDs[i]]; !ok {
				need[dictIDs[i]] = true
			}
		}
	}
	s.dicts.mu.Unlock()
	for id := range need {
		var data []byte
		err := sqldb.RetryRead(ctx, func() error {
			return s.db.QueryRowContext(ctx, `SELECT dict FROM hub_audit_dicts WHERE id = $1`, id).Scan(&data)
		})
		if err != nil {
			return fmt.Errorf("audit dictionary %d: %w", id, err)
		}
		s.dicts.mu.Lock()
		if s.dicts.byID == nil {
			s.dicts.byID = map[int64][]byte{}
		}
		s.dicts.byID[id] = data
		s.dicts.mu.Unlock()
	}
	for i, r := range recs {
		switch codecs[i] {
		case codecRaw:
		case codecZlib, codecZlibDetail:
			s.dicts.mu.Lock()
			d := s.dicts.byID[dictIDs[i]]
			s.dicts.mu.Unlock()
			plain, err := decompress(r.Message, d)
			if err != nil {
				return fmt.Errorf("audit record %d: message does not decode: %w", r.ID, err)
			}
			r.Message = plain
			if codecs[i] == codecZlibDetail {
				if r.Detail, r.Message, err = unframeDetail(plain); err != nil {
					return fmt.Errorf("audit record %d: %w", r.ID, err)
				}
			}
		default:
			return fmt.Errorf("audit record %d: unknown codec %d", r.ID, codecs[i])
		}
	}
	return nil
}
