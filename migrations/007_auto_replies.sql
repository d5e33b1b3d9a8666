-- SMS auto-replies take the trigger model of the API: one JSON object
-- {"type": "dnd" | "after_hours" | "keyword", ...parameters}, always for one
-- number (a rule that applied to every number becomes one per number).
CREATE TABLE auto_replies_v2 (
    id          INTEGER PRIMARY KEY,
    did_id      INTEGER NOT NULL REFERENCES dids(id) ON DELETE CASCADE,
    trigger_def TEXT NOT NULL CHECK (json_valid(trigger_def)
        AND json_extract(trigger_def, '$.type') IN ('dnd', 'after_hours', 'keyword')),
    reply_text  TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
) STRICT;

INSERT INTO auto_replies_v2 (id, did_id, trigger_def, reply_text, enabled)
    SELECT id, did_id, json_set(trigger_data, '$.type', trigger_type), reply_text, enabled
    FROM auto_replies WHERE did_id IS NOT NULL;
INSERT INTO auto_replies_v2 (did_id, trigger_def, reply_text, enabled)
    SELECT d.id, json_set(a.trigger_data, '$.type', a.trigger_type), a.reply_text, a.enabled
    FROM auto_replies a CROSS JOIN dids d WHERE a.did_id IS NULL ORDER BY a.id, d.id;

DROP TABLE auto_replies;
ALTER TABLE auto_replies_v2 RENAME TO auto_replies;
CREATE INDEX idx_auto_replies_did ON auto_replies(did_id);

-- Loop and abuse protection: when each rule last answered each sender. One
-- row per (rule, sender), rewritten only when an auto-reply is sent.
CREATE TABLE auto_reply_sent (
    auto_reply_id INTEGER NOT NULL REFERENCES auto_replies(id) ON DELETE CASCADE,
    sender        TEXT NOT NULL,
    sent_at       TEXT NOT NULL,
    PRIMARY KEY (auto_reply_id, sender)
) STRICT, WITHOUT ROWID;

-- An outgoing message Homeline sent by itself (the conversation shows it so).
ALTER TABLE messages ADD COLUMN auto_reply INTEGER NOT NULL DEFAULT 0 CHECK (auto_reply IN (0, 1));
