-- The web side's security model: sessions, persisted login-failure counters,
-- and sealed secrets (Twilio token, SMTP password, API keys).

-- A browser session. Only SHA-256(token) is stored, so a copied database does
-- not hand out live sessions. `last_seen_at` moves only when `expires_at` is
-- extended (at most every 5 minutes, see SESSION_REFRESH_INTERVAL), to spare
-- the SD card.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    user_agent   TEXT,
    ip           TEXT
) STRICT;

CREATE INDEX idx_sessions_user ON sessions(user_id);
CREATE INDEX idx_sessions_expires ON sessions(expires_at);

-- Failed logins per key: 'ip:<client address>' or 'account:<lower-case e-mail>'.
-- Persisted so a restart does not hand an attacker a fresh set of attempts.
-- Unknown e-mails are counted too (the answer must not reveal which exist).
CREATE TABLE login_attempts (
    key               TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL CHECK (failures >= 0),
    window_started_at TEXT NOT NULL,
    locked_until      TEXT
) STRICT;

-- Secrets sealed with the appliance key (see src/secrets.rs); the key name is
-- the AEAD context, so a sealed value cannot be moved to another key.
CREATE TABLE secrets (
    key        TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
