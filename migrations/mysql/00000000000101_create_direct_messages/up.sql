-- One row per message. `user_lo`/`user_hi` store the conversation as a canonical pair,
-- so a page of a conversation is one range scan of `direct_messages_conversation`.
-- `direct_messages_unread` holds every column an unread count reads: counting is index-only.
-- MEDIUMTEXT: plain TEXT stops at 65,535 bytes; utf8mb4 so emoji round-trip.
CREATE TABLE direct_messages (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sender_id BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL,
    content MEDIUMTEXT NOT NULL,
    sent_at DATETIME(6) NOT NULL,
    read_at DATETIME(6) NULL,
    edited_at DATETIME(6) NULL,
    deleted_by_sender BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_by_recipient BOOLEAN NOT NULL DEFAULT FALSE,
    user_lo BIGINT AS (LEAST(sender_id, recipient_id)) STORED,
    user_hi BIGINT AS (GREATEST(sender_id, recipient_id)) STORED,
    CONSTRAINT direct_messages_not_self CHECK (sender_id <> recipient_id),
    INDEX direct_messages_conversation (user_lo, user_hi, id),
    -- No partial indexes here: read_at leads the tail, so "unread" is an equality prefix.
    INDEX direct_messages_unread (recipient_id, read_at, sender_id, deleted_by_recipient, id),
    -- For purge (`user_lo = ? OR user_hi = ?`). With the conversation's columns after
    -- `user_hi` it offers a page nothing `direct_messages_conversation` does not: a bare
    -- `(user_hi)` made MariaDB read a whole skewed conversation through it, then sort.
    INDEX direct_messages_user_hi (user_hi, user_lo, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
