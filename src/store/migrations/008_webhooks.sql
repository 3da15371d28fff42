-- userdrop store: the webhook deliveries. One row per (job, configured
-- webhook), written with its body rendered, in the transaction that
-- finishes the job, and POSTed later by the daemon's webhook sender,
-- retried with the mail's backoff. (008: 007 belongs to another change.)

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    job_id          INTEGER REFERENCES jobs (id),
    -- job.finished | job.held | job.rejected
    event           TEXT    NOT NULL,
    -- Where it is POSTed; the secret is never stored, it is the config's.
    url             TEXT    NOT NULL,
    -- The JSON body, exactly as every attempt sends it.
    body            BLOB    NOT NULL,
    -- queued -> sent, or queued -> failed (given up).
    state           TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Scheduling times are milliseconds since the Unix epoch (UTC).
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    -- Set while a sender holds the delivery (see outbox.lease_until).
    lease_until     INTEGER,
    last_error      TEXT,
    -- The receiver's status code of the last attempt that got one.
    last_status     INTEGER,
    created_at      TEXT    NOT NULL,
    last_attempt_at TEXT,
    sent_at         TEXT,
    failed_at       TEXT
);
CREATE INDEX webhooks_due ON webhooks (state, next_attempt_at);
CREATE INDEX webhooks_job ON webhooks (job_id);
