-- Routing rules: the unused `routes` table of 001 (one condition per rule,
-- global rules) is replaced by the rule model of `rules::model`: per number,
-- ordered by position, a JSON array of conditions (all must hold) and one
-- JSON action. It was never written by any release, so nothing is carried over.
DROP INDEX IF EXISTS idx_routes_did_priority;
DROP TABLE routes;

CREATE TABLE routes (
    id         INTEGER PRIMARY KEY,
    did_id     INTEGER NOT NULL REFERENCES dids(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK (position >= 0),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    conditions TEXT NOT NULL DEFAULT '[]'
               CHECK (json_valid(conditions) AND json_type(conditions) = 'array'),
    action     TEXT NOT NULL CHECK (json_valid(action) AND json_type(action) = 'object'),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX idx_routes_did_position ON routes(did_id, position);

-- Named lists of callers ("VIP") that rules match on.
CREATE TABLE caller_lists (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 200),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE caller_list_numbers (
    list_id INTEGER NOT NULL REFERENCES caller_lists(id) ON DELETE CASCADE,
    number  TEXT NOT NULL CHECK (number GLOB '+[1-9]*' AND length(number) BETWEEN 3 AND 16),
    PRIMARY KEY (list_id, number)
) STRICT, WITHOUT ROWID;

-- The decision the voice webhook made for each Twilio call, by CallSid:
-- written once when the call comes in, before any call record exists.
-- The record (written later by the call layer or Twilio's status callback)
-- takes the rule from here through the triggers below, so every path that
-- writes a record names the rule without knowing about rules.
CREATE TABLE call_decisions (
    call_sid     TEXT PRIMARY KEY,
    did_id       INTEGER REFERENCES dids(id) ON DELETE SET NULL,
    rule_id      INTEGER,
    rule_name    TEXT,
    default_kind TEXT CHECK (default_kind IS NULL OR default_kind IN ('blocklist', 'anonymous', 'no_rules')),
    action       TEXT NOT NULL CHECK (json_valid(action)),
    spam_score   REAL,
    decided_at   TEXT NOT NULL
) STRICT;
CREATE INDEX idx_call_decisions_decided ON call_decisions(decided_at);

-- The rule that decided the call (no foreign key: history outlives rules).
ALTER TABLE cdrs ADD COLUMN rule_id INTEGER;
ALTER TABLE cdrs ADD COLUMN rule_name TEXT;

CREATE TRIGGER cdrs_rule_on_insert AFTER INSERT ON cdrs
WHEN NEW.call_sid IS NOT NULL AND NEW.rule_name IS NULL
BEGIN
    UPDATE cdrs SET
        rule_id = (SELECT rule_id FROM call_decisions WHERE call_sid = NEW.call_sid),
        rule_name = (SELECT rule_name FROM call_decisions WHERE call_sid = NEW.call_sid),
        spam_score = coalesce(NEW.spam_score,
            (SELECT spam_score FROM call_decisions WHERE call_sid = NEW.call_sid))
    WHERE id = NEW.id AND EXISTS (SELECT 1 FROM call_decisions WHERE call_sid = NEW.call_sid);
END;

CREATE TRIGGER cdrs_rule_on_link AFTER UPDATE OF call_sid ON cdrs
WHEN NEW.call_sid IS NOT NULL AND NEW.rule_name IS NULL
BEGIN
    UPDATE cdrs SET
        rule_id = (SELECT rule_id FROM call_decisions WHERE call_sid = NEW.call_sid),
        rule_name = (SELECT rule_name FROM call_decisions WHERE call_sid = NEW.call_sid),
        spam_score = coalesce(NEW.spam_score,
            (SELECT spam_score FROM call_decisions WHERE call_sid = NEW.call_sid))
    WHERE id = NEW.id AND EXISTS (SELECT 1 FROM call_decisions WHERE call_sid = NEW.call_sid);
END;
