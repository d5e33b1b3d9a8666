-- Homeline's initial schema: the GoSIP plan's tables, with its mistakes fixed.
--
-- Conventions:
--   * STRICT tables: a wrong type is an error, not a silent coercion.
--   * Timestamps are UTC RFC 3339 text ('2026-11-21T10:00:00Z'), written by the
--     application's injectable clock; they sort and compare as text.
--   * Booleans are INTEGER 0/1 with a CHECK; JSON columns are TEXT with json_valid().
--   * Fixes against GoSIP: registrations.transport is case-insensitive; CDR
--     dispositions cover every final Twilio call status (the raw status is kept
--     apart); voicemails belong to a DID mailbox (did_id), not to a user id
--     holding a DID id; device SIP passwords are sealed, not an unusable hash.

CREATE TABLE config (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_login_at TEXT
) STRICT;

-- A SIP phone or softphone. The SIP password is what the phone must be given
-- (provisioning), so it is stored sealed (AEAD, key in the data dir), never as
-- plain text and never only as a one-way hash.
CREATE TABLE devices (
    id                  INTEGER PRIMARY KEY,
    user_id             INTEGER REFERENCES users(id) ON DELETE SET NULL,
    name                TEXT NOT NULL,
    username            TEXT NOT NULL UNIQUE,
    sip_password_sealed BLOB NOT NULL,
    device_type         TEXT NOT NULL DEFAULT 'softphone'
                        CHECK (device_type IN ('grandstream', 'yealink', 'linphone', 'zoiper', 'softphone', 'other')),
    recording_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (recording_enabled IN (0, 1)),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;

-- SIP bindings. Written only when a binding is created, changes or is removed;
-- plain refreshes stay in RAM (SD-card wear), so there is no last_seen column.
CREATE TABLE registrations (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    contact_uri TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    user_agent  TEXT,
    source_addr TEXT NOT NULL,
    transport   TEXT NOT NULL COLLATE NOCASE CHECK (transport IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
    created_at  TEXT NOT NULL,
    UNIQUE (device_id, contact_uri)
) STRICT;

-- Phone numbers, in E.164.
CREATE TABLE dids (
    id            INTEGER PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE CHECK (number GLOB '+[1-9]*' AND length(number) BETWEEN 3 AND 16),
    twilio_sid    TEXT UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    sms_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (sms_enabled IN (0, 1)),
    voice_enabled INTEGER NOT NULL DEFAULT 1 CHECK (voice_enabled IN (0, 1)),
    created_at    TEXT NOT NULL
) STRICT;

-- Which users a number belongs to (a household line is often shared).
CREATE TABLE did_users (
    did_id  INTEGER NOT NULL REFERENCES dids(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (did_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE routes (
    id             INTEGER PRIMARY KEY,
    did_id         INTEGER REFERENCES dids(id) ON DELETE CASCADE,
    priority       INTEGER NOT NULL DEFAULT 0,
    name           TEXT NOT NULL,
    condition_type TEXT NOT NULL CHECK (condition_type IN ('time', 'callerid', 'default')),
    condition_data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(condition_data)),
    action_type    TEXT NOT NULL CHECK (action_type IN ('ring', 'forward', 'voicemail', 'reject')),
    action_data    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(action_data)),
    enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
) STRICT;

CREATE TABLE blocklist (
    id           INTEGER PRIMARY KEY,
    pattern      TEXT NOT NULL,
    pattern_type TEXT NOT NULL CHECK (pattern_type IN ('exact', 'prefix', 'regex')),
    reason       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    UNIQUE (pattern, pattern_type)
) STRICT;

-- One row per finished call. `disposition` is Homeline's verdict; Twilio's raw
-- call status (which Twilio may extend) is kept in `twilio_status`.
CREATE TABLE cdrs (
    id            INTEGER PRIMARY KEY,
    call_sid      TEXT UNIQUE,
    sip_call_id   TEXT,
    direction     TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    from_number   TEXT NOT NULL,
    to_number     TEXT NOT NULL,
    did_id        INTEGER REFERENCES dids(id) ON DELETE SET NULL,
    device_id     INTEGER REFERENCES devices(id) ON DELETE SET NULL,
    started_at    TEXT NOT NULL,
    answered_at   TEXT,
    ended_at      TEXT,
    duration_secs INTEGER NOT NULL DEFAULT 0 CHECK (duration_secs >= 0),
    disposition   TEXT NOT NULL CHECK (disposition IN
                  ('answered', 'voicemail', 'missed', 'no_answer', 'busy', 'failed', 'canceled', 'blocked', 'rejected')),
    twilio_status TEXT,
    hangup_cause  TEXT,
    recording_path TEXT,
    spam_score    REAL CHECK (spam_score IS NULL OR (spam_score >= 0.0 AND spam_score <= 1.0))
) STRICT;

-- A voicemail belongs to the mailbox of the number that was called; the users
-- of that number (did_users) may read it.
CREATE TABLE voicemails (
    id                   INTEGER PRIMARY KEY,
    did_id               INTEGER NOT NULL REFERENCES dids(id) ON DELETE CASCADE,
    cdr_id               INTEGER REFERENCES cdrs(id) ON DELETE SET NULL,
    recording_sid        TEXT UNIQUE,
    call_sid             TEXT,
    from_number          TEXT NOT NULL,
    audio_path           TEXT,
    twilio_recording_url TEXT,
    transcript           TEXT,
    duration_secs        INTEGER NOT NULL DEFAULT 0 CHECK (duration_secs >= 0),
    is_read              INTEGER NOT NULL DEFAULT 0 CHECK (is_read IN (0, 1)),
    created_at           TEXT NOT NULL
) STRICT;

-- SMS/MMS. A conversation is (did_id, remote_number); remote_number is derived
-- from the direction so it can never disagree with from/to.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    message_sid   TEXT UNIQUE,
    direction     TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    did_id        INTEGER NOT NULL REFERENCES dids(id) ON DELETE CASCADE,
    from_number   TEXT NOT NULL,
    to_number     TEXT NOT NULL,
    remote_number TEXT GENERATED ALWAYS AS (CASE direction WHEN 'inbound' THEN from_number ELSE to_number END) VIRTUAL,
    body          TEXT NOT NULL DEFAULT '',
    media         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(media) AND json_type(media) = 'array'),
    status        TEXT NOT NULL,
    error_code    INTEGER,
    is_read       INTEGER NOT NULL DEFAULT 0 CHECK (is_read IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE auto_replies (
    id           INTEGER PRIMARY KEY,
    did_id       INTEGER REFERENCES dids(id) ON DELETE CASCADE,
    trigger_type TEXT NOT NULL CHECK (trigger_type IN ('dnd', 'after_hours', 'keyword')),
    trigger_data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(trigger_data)),
    reply_text   TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
) STRICT;
