-- Call history at scale: every list query of GET /api/cdrs is served by an
-- index in its own order (newest first, ties by id), so a page costs the rows
-- it returns, not the table. Each index ends in started_at; SQLite appends the
-- rowid (= id) to every index, which gives the tie-break for free, and scans
-- the index backwards for ORDER BY started_at DESC, id DESC (no temp B-tree).
-- The old single-column indexes could filter but not sort.

DROP INDEX idx_cdrs_started;
DROP INDEX idx_cdrs_disposition;
DROP INDEX idx_cdrs_did;

CREATE INDEX idx_cdrs_started ON cdrs(started_at);
CREATE INDEX idx_cdrs_disposition_started ON cdrs(disposition, started_at);
CREATE INDEX idx_cdrs_direction_started ON cdrs(direction, started_at);
-- A user's history is one scan per number (also serves ON DELETE SET NULL).
CREATE INDEX idx_cdrs_did_started ON cdrs(did_id, started_at);
-- The `number` filter matches either party: one scan per side.
CREATE INDEX idx_cdrs_from_started ON cdrs(from_number, started_at);
CREATE INDEX idx_cdrs_to_started ON cdrs(to_number, started_at);
-- Linking a CallSid to the record of its SIP call looked every row up.
CREATE INDEX idx_cdrs_sip_call_id ON cdrs(sip_call_id) WHERE sip_call_id IS NOT NULL;
