-- ACME (RFC 8555): the certificate obtained for the household's public name
-- and the client's state. The account key is sealed in `secrets`
-- (`acme.account_key`); the certificate's private key is sealed here, with
-- its chain, so a certificate and its key are always replaced together.
-- One row each: only the certificate being served matters.
CREATE TABLE acme_certificate (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    name        TEXT NOT NULL,
    chain_pem   TEXT NOT NULL,
    key_sealed  BLOB NOT NULL,
    not_before  TEXT NOT NULL,
    not_after   TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    obtained_at TEXT NOT NULL
) STRICT;

-- The account at the CA and the last attempt's outcome (written only when an
-- attempt ends: a few rows a quarter, not a hot path).
CREATE TABLE acme_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    directory_url   TEXT,
    account_url     TEXT,
    last_attempt_at TEXT,
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    retry_at        TEXT,
    updated_at      TEXT NOT NULL
) STRICT;
