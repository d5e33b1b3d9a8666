-- The plan's performance indexes, on the corrected column names.

CREATE INDEX idx_cdrs_started ON cdrs(started_at DESC);
CREATE INDEX idx_cdrs_disposition ON cdrs(disposition);
CREATE INDEX idx_cdrs_did ON cdrs(did_id);

CREATE INDEX idx_messages_created ON messages(created_at DESC);
CREATE INDEX idx_messages_conversation ON messages(did_id, remote_number, created_at);

CREATE INDEX idx_voicemails_did ON voicemails(did_id, created_at DESC);
CREATE INDEX idx_voicemails_unread ON voicemails(did_id) WHERE is_read = 0;

CREATE INDEX idx_registrations_device ON registrations(device_id);
CREATE INDEX idx_registrations_expires ON registrations(expires_at);

CREATE INDEX idx_routes_did_priority ON routes(did_id, priority);

CREATE INDEX idx_did_users_user ON did_users(user_id);
CREATE INDEX idx_devices_user ON devices(user_id);
