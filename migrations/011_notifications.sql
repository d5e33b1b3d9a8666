-- Notifications (src/notify): every message to the household (e-mail, push,
-- event webhook) is a row here, rendered when its event happened, and is
-- delivered by the outbox (one job per row). The rendered text is kept so a
-- retry sends exactly the same thing and the admin's delivery log shows what
-- went out. `dedupe_key` makes "notify once" hold even when an event is seen
-- twice (a replayed webhook, a restart, catch-up after an outage).
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'push', 'webhook')),
    event       TEXT NOT NULL CHECK (event IN
                ('voicemail', 'voicemail_transcript', 'missed_call', 'message', 'message_out', 'alert', 'test')),
    -- The account it is for (none for webhooks and for addresses typed by an admin).
    user_id     INTEGER REFERENCES users(id) ON DELETE CASCADE,
    -- E-mail: the address. Push: 'household' or 'user:<id>' (the token is a
    -- secret, looked up at send time). Webhook: the `webhooks` row id.
    target      TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    body_text   TEXT NOT NULL DEFAULT '',
    body_html   TEXT,
    -- Webhook: the event's JSON; push: Gotify `extras`.
    payload     TEXT CHECK (payload IS NULL OR json_valid(payload)),
    -- [{"path": absolute path, "filename", "content_type"}]
    attachments TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(attachments) AND json_type(attachments) = 'array'),
    -- Where a click or tap leads (the portal page).
    link        TEXT,
    priority    INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'abandoned')),
    error       TEXT,
    dedupe_key  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
) STRICT;

CREATE INDEX idx_notifications_created ON notifications(created_at);

-- Admin-configured receivers of JSON events, signed with HMAC-SHA256.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY,
    url           TEXT NOT NULL,
    -- The signing secret, sealed (crate::secrets, context 'webhook').
    secret_sealed BLOB NOT NULL,
    -- Event names it receives; [] means all.
    events        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(events) AND json_type(events) = 'array'),
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
