-- The owners of the provider's objects (KECIS §13.3): who created each
-- order and approval, so that only its owner may operate on it.
CREATE TABLE adapter_objects (
    kind       TEXT NOT NULL,    -- e.g. card:order, card:approval
    scope      TEXT NOT NULL,    -- the owner for an ID of the owner's own (an order number), '' for one the provider assigned
    ref        BYTEA NOT NULL,   -- HMAC of kind and ID: an ID is whatever the caller chose, kept out of the row
    owner      TEXT NOT NULL,    -- the caller that created it: OnBehalfOf, else the Issuer
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, scope, ref)
);
