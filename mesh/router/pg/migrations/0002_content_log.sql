-- The content log (mesh.crypto.ContentLog's table): prompts and answers of tenants that
-- turned content logging on, each field sealed with AES-256-GCM before it gets here.
CREATE TABLE content_log (
    tenant TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    prompt BYTEA NOT NULL,
    answer BYTEA NOT NULL,
    PRIMARY KEY (tenant, request_id)
);
CREATE INDEX content_log_created ON content_log (created_at);
