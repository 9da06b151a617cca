-- Meetings scheduled through the API (src/meetings.rs). The live room is the relay's and lives in memory
-- only; this is its record: who hosts it, its window, its code, who is invited, where it was recorded and
-- its minutes. Times are RFC 3339 UTC text like everywhere else; the id is the relay's (32 hex digits).

CREATE TABLE meetings (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    host_id BIGINT NOT NULL REFERENCES users(id),
    ticket_id BIGINT REFERENCES tickets(id),
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    code TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- The latest recording's directory, relative to the data directory.
    recording_dir TEXT,
    -- Whether that recording was running when last started or stopped through the API.
    recording_active BOOLEAN NOT NULL DEFAULT FALSE,
    -- Deleting the article (knowledge base) leaves the meeting without minutes, so they can be written again.
    minutes_article_id BIGINT REFERENCES kb_articles(id) ON DELETE SET NULL,
    -- When the meeting was ended through the API, or first seen gone from the relay.
    ended_at TEXT
);
CREATE INDEX meetings_host ON meetings(host_id);
CREATE INDEX meetings_ticket ON meetings(ticket_id);
CREATE INDEX meetings_created ON meetings(created_at, id);

CREATE TABLE meeting_invitees (
    meeting_id TEXT NOT NULL REFERENCES meetings(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (meeting_id, user_id)
);
CREATE INDEX meeting_invitees_user ON meeting_invitees(user_id);
