-- 2-WAY requests received over HTTP-POST from a requester (KECIS §15.5.1):
-- one per requester and order, bound to the browser that brought it (a
-- keyed hash of its cookie), then to the remitter and the transfer
-- (twoway_request) once the remitter confirms the prefilled form. The
-- payee's account, phone and expected name are sealed; the signed answer
-- is kept so that it is posted once, the same bytes every time.
CREATE TABLE twoway_front (
    id              TEXT PRIMARY KEY,
    requester       TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    request_id      TEXT NOT NULL,         -- the SAML request the answer is InResponseTo
    idempotency_key TEXT NOT NULL,
    relay_state     TEXT NOT NULL,
    binding         BLOB NOT NULL,
    fingerprint     BLOB NOT NULL,           -- keyed hash of the request's content
    amount          INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    payee_bank      TEXT NOT NULL,
    payee_ref       TEXT NOT NULL,         -- masked account
    sealed          BLOB NOT NULL,           -- payee account, phone, expected name
    purpose         TEXT NOT NULL,
    terms           TEXT NOT NULL,
    customer        TEXT NOT NULL,         -- '' until the remitter confirms
    transfer_id     TEXT NOT NULL,         -- twoway_request.id, '' until then
    answer          BLOB NOT NULL,           -- the signed answer, empty until posted
    destination     TEXT NOT NULL,
    answer_state    TEXT NOT NULL,         -- the state the answer told
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX twoway_front_order ON twoway_front (requester, order_id);
CREATE INDEX twoway_front_transfer ON twoway_front (transfer_id) WHERE transfer_id <> '';
