-- userdrop store, version 6: files that arrive whole through a door other
-- than an inbox (the HTTP API). `options` is the JSON of what the request
-- asked for (mode, delimiter) that the worker applies over the tenant's
-- settings; NULL for every other job. `idempotency` remembers, per tenant,
-- which job a client's Idempotency-Key made and the hash of the bytes it
-- carried, so a retried POST returns the first job instead of importing
-- twice (for 24 hours: older keys are forgotten).
ALTER TABLE jobs ADD COLUMN options TEXT;

CREATE TABLE idempotency (
    tenant     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    body_hash  TEXT    NOT NULL,
    job        INTEGER NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
