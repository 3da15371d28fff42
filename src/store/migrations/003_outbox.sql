-- userdrop store, version 3: the mail outbox. A message is written here,
-- fully rendered, in the transaction that finishes its job, and a sender
-- delivers it later (SMTP or an .eml file), retrying with backoff.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    job_id          INTEGER REFERENCES jobs (id),
    -- failure | success | invitation
    kind            TEXT    NOT NULL,
    -- The Message-ID header, kept for every resend of the message.
    message_id      TEXT    NOT NULL DEFAULT '',
    -- The SMTP envelope: the bare sender address, a JSON array of recipients.
    envelope_from   TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    -- The RFC 5322 message, exactly as it is sent.
    message         BLOB    NOT NULL DEFAULT x'',
    -- queued -> sent, or queued -> failed (given up; `userdrop mail retry`).
    state           TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Scheduling times are milliseconds since the Unix epoch (UTC).
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    -- Set while a sender holds the message, so that two senders (the daemon
    -- and `userdrop mail flush`) never send it at once; a sender that dies
    -- mid-way loses it when the lease ends.
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    last_attempt_at TEXT,
    sent_at         TEXT,
    failed_at       TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_job ON outbox (job_id);
