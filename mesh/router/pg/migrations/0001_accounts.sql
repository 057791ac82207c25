-- Accounts, usage and the audit chain: the SQLite schema (mesh/router/store_schema.py,
-- versions 1-3) in one step, plus the keyed head (audit_anchor) that SQLite keeps in a file.
-- Text that is sorted or compared (days, ISO times, names) uses the "C" collation: byte
-- order, as in SQLite, whatever the database's locale.
CREATE TABLE tenants (
    name TEXT COLLATE "C" PRIMARY KEY,
    tier TEXT NOT NULL,
    filter_enabled INTEGER NOT NULL,
    experimental_opt_in INTEGER NOT NULL,
    rotation_max_age_s BIGINT NOT NULL,
    rotation_overlap_s BIGINT NOT NULL,
    retention_days INTEGER NOT NULL,
    content_logging INTEGER NOT NULL,
    model_patterns TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE,
    model_patterns TEXT,
    admin INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION NOT NULL,
    predecessor_id TEXT NOT NULL,
    successor_id TEXT NOT NULL,
    last_used_at DOUBLE PRECISION NOT NULL,
    pending_secret BYTEA
);

-- `requests`: how many requests a row stands for (retention rolls detail up into days).
CREATE TABLE usage (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time DOUBLE PRECISION NOT NULL,
    day TEXT COLLATE "C" NOT NULL,
    request_id TEXT NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT COLLATE "C" NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    system_tokens BIGINT NOT NULL,
    cost_units BIGINT NOT NULL,
    energy_units BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX usage_tenant_time ON usage (tenant, time);
CREATE INDEX usage_time ON usage (time);

CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    time TEXT COLLATE "C" NOT NULL,
    request_id TEXT NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    filter_verdict TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_tenant_seq ON audit (tenant, seq);
CREATE INDEX audit_time ON audit (time);

-- The last link, written with every append: a cut-off tail shows in verify.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

-- Retention cuts expired records off the chain's start; verify continues from here.
CREATE TABLE audit_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    time TEXT NOT NULL
);

-- Links from `keyed_from` on are HMACs with the audit key; `key_check` fingerprints it.
CREATE TABLE audit_keying (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    keyed_from BIGINT NOT NULL,
    key_check TEXT NOT NULL
);

-- The keyed head: (seq, hash, keyed_from) MACed with the audit key, written in the same
-- transaction as every append, where every router and `audit verify` find it. Cutting the
-- tail and rewriting audit_head cannot move it back without the key.
CREATE TABLE audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    keyed_from BIGINT NOT NULL,
    mac TEXT NOT NULL
);
