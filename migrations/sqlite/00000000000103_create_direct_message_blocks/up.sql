CREATE TABLE direct_message_blocks (
    blocker_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
) WITHOUT ROWID;
CREATE INDEX direct_message_blocks_blocked ON direct_message_blocks (blocked_id);
