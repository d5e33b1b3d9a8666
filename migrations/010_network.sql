-- The router's public address and port forwards (src/netaddr). Written only
-- when something changes (an address, a mapping's state, a DNS update), never
-- on the periodic checks that find everything as it was: SD cards wear out.

-- One row: the public address last found, where from, and the dynamic-DNS
-- name's last update (so a restart does not update DuckDNS again at once).
CREATE TABLE network_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    public_ip       TEXT,
    source          TEXT NOT NULL DEFAULT 'none'
                    CHECK (source IN ('manual', 'nat-pmp', 'upnp', 'stun', 'none')),
    changed_at      TEXT,
    ddns_ip         TEXT,
    ddns_status     TEXT NOT NULL DEFAULT 'off' CHECK (ddns_status IN ('ok', 'failed', 'off')),
    ddns_error      TEXT,
    ddns_updated_at TEXT,
    updated_at      TEXT NOT NULL
) STRICT;

-- One row per forward Homeline needs (sip-tls, rtp, http, https): how it
-- stands at the router. Mappings the router granted are removed at shutdown
-- and when the admin turns `router.auto_forward` off.
CREATE TABLE port_mappings (
    name           TEXT PRIMARY KEY,
    protocol       TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    external_first INTEGER NOT NULL CHECK (external_first BETWEEN 1 AND 65535),
    external_last  INTEGER NOT NULL CHECK (external_last BETWEEN external_first AND 65535),
    internal_port  INTEGER NOT NULL CHECK (internal_port BETWEEN 1 AND 65535),
    status         TEXT NOT NULL CHECK (status IN ('ok', 'refused', 'unsupported', 'off')),
    detail         TEXT,
    via            TEXT CHECK (via IN ('upnp', 'nat-pmp')),
    expires_at     TEXT,
    updated_at     TEXT NOT NULL
) STRICT;
