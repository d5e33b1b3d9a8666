-- Do-Not-Disturb: one row per subject that has a setting (no row = off).
-- `scope` names what `subject_id` is: the whole household ('system', subject
-- 0), a web account ('user', users.id) or a phone ('device', devices.id).
-- Active = `on`, or `schedule` (a JSON Schedule, see src/rules/schedule.rs)
-- contains the current local time. The subject has no foreign key (it points
-- at one of two tables), so triggers remove a deleted account's or phone's row.
CREATE TABLE dnd (
    scope      TEXT NOT NULL CHECK (scope IN ('system', 'user', 'device')),
    subject_id INTEGER NOT NULL CHECK (subject_id >= 0),
    "on"       INTEGER NOT NULL DEFAULT 0 CHECK ("on" IN (0, 1)),
    schedule   TEXT CHECK (schedule IS NULL OR json_valid(schedule)),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (scope, subject_id),
    CHECK ((scope = 'system') = (subject_id = 0))
) STRICT, WITHOUT ROWID;

CREATE TRIGGER dnd_user_deleted AFTER DELETE ON users BEGIN
    DELETE FROM dnd WHERE scope = 'user' AND subject_id = old.id;
END;

CREATE TRIGGER dnd_device_deleted AFTER DELETE ON devices BEGIN
    DELETE FROM dnd WHERE scope = 'device' AND subject_id = old.id;
END;
