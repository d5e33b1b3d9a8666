-- The durable outbox: every side effect towards Twilio (send a message,
-- download or delete a recording or MMS media, point a number at us) is a row
-- here before it is attempted. `payload` is the job (JSON, tagged by `kind`).
-- `attempt_started_ms` is set, durably, before each attempt: a row found in
-- state 'attempting' after a crash is an attempt whose outcome is unknown,
-- which the job must reconcile before trying again (see src/outbox/mod.rs).
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL,
    payload            TEXT NOT NULL CHECK (json_valid(payload)),
    state              TEXT NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'attempting', 'done', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    failures           INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    next_attempt_ms    INTEGER NOT NULL,
    attempt_started_ms INTEGER,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;

-- The worker's only query at wake-up: the earliest unfinished job.
CREATE INDEX idx_outbox_due ON outbox(next_attempt_ms, id) WHERE state IN ('pending', 'attempting');

-- Conditions an administrator must see (API and log): e.g. a job that failed
-- three times in a row. At most one open alert per key.
CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL,
    message    TEXT NOT NULL,
    raised_at  TEXT NOT NULL,
    cleared_at TEXT
) STRICT;

CREATE UNIQUE INDEX idx_alerts_open ON alerts(key) WHERE cleared_at IS NULL;
