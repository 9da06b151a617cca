-- Accounts, tickets, knowledge base (SQLite DDL). The queries in src/store and src/api are plain SQL that
-- PostgreSQL also runs ($N parameters, INSERT ... RETURNING, ON CONFLICT); only this DDL (INTEGER PRIMARY
-- KEY row ids) and the FTS5 table of 0002 are SQLite's own. Times are RFC 3339 UTC text (they sort as text).

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    employee_id TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    name TEXT NOT NULL,
    department TEXT NOT NULL DEFAULT '',
    contact TEXT NOT NULL DEFAULT '',
    phone TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL DEFAULT TRUE,
    phone_verified BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);

CREATE TABLE login_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX login_sessions_user ON login_sessions(user_id);

CREATE TABLE phone_verifications (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    phone TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    user_id BIGINT REFERENCES users(id),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE approval_rules (
    priority TEXT PRIMARY KEY,
    needs_approval BOOLEAN NOT NULL
);
INSERT INTO approval_rules (priority, needs_approval) VALUES ('urgent', TRUE), ('high', FALSE), ('medium', FALSE), ('low', FALSE);

CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);

CREATE TABLE ticket_serials (
    day TEXT PRIMARY KEY,
    last_serial BIGINT NOT NULL
);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    reporter_id BIGINT NOT NULL REFERENCES users(id),
    department TEXT NOT NULL DEFAULT '',
    contact TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    device_id BIGINT REFERENCES devices(id),
    device_text TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    assignee_id BIGINT REFERENCES users(id),
    approved_by BIGINT REFERENCES users(id),
    reopen_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX tickets_status ON tickets(status);
CREATE INDEX tickets_assignee ON tickets(assignee_id);
CREATE INDEX tickets_reporter ON tickets(reporter_id);
CREATE INDEX tickets_created ON tickets(created_at, id);

CREATE TABLE ticket_records (
    id INTEGER PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    author_id BIGINT REFERENCES users(id),
    kind TEXT NOT NULL,
    steps TEXT NOT NULL DEFAULT '',
    solution TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX ticket_records_ticket ON ticket_records(ticket_id);

CREATE TABLE ticket_messages (
    id INTEGER PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    internal BOOLEAN NOT NULL DEFAULT FALSE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages(ticket_id);

CREATE TABLE assist_links (
    session_id TEXT PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    technician_id BIGINT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    actor_id BIGINT REFERENCES users(id),
    entity TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    field TEXT NOT NULL DEFAULT '',
    old_value TEXT NOT NULL DEFAULT '',
    new_value TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log(entity, entity_id);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    ticket_id BIGINT REFERENCES tickets(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX notifications_user ON notifications(user_id, id);

CREATE TABLE kb_articles (
    id INTEGER PRIMARY KEY,
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    keywords TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL,
    author_id BIGINT NOT NULL REFERENCES users(id),
    source_ticket_id BIGINT REFERENCES tickets(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX kb_articles_category ON kb_articles(category);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    owner_kind TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    file_name TEXT NOT NULL,
    uploaded_by BIGINT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL
);
CREATE INDEX attachments_owner ON attachments(owner_kind, owner_id);
