CREATE TABLE direct_message_blocks (
    blocker_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT direct_message_blocks_not_self CHECK (blocker_id <> blocked_id),
    INDEX direct_message_blocks_blocked (blocked_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
