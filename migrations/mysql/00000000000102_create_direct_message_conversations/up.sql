-- One row per (owner, partner): the owner's view of a conversation, kept up to date in
-- the same transaction as every send, read, delete, so an inbox page is one range scan.
CREATE TABLE direct_message_conversations (
    owner_id BIGINT NOT NULL,
    partner_id BIGINT NOT NULL,
    last_message_id BIGINT NULL,
    unread_count BIGINT NOT NULL DEFAULT 0,
    -- The latest `sent_at` of the conversation, read with its lock by the next send.
    last_sent_at DATETIME(6) NULL,
    -- The owner archived it: out of their inbox until a new message arrives.
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    -- The owner muted it: a flag for the app's notifications, nothing else.
    muted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (owner_id, partner_id),
    CONSTRAINT direct_message_conversations_not_self CHECK (owner_id <> partner_id),
    CONSTRAINT direct_message_conversations_unread CHECK (unread_count >= 0),
    INDEX direct_message_conversations_latest (owner_id, last_message_id),
    -- The inbox screen and its archive, each latest first.
    INDEX direct_message_conversations_inbox (owner_id, archived, last_message_id),
    -- The partners with something unread, for `unread_count` (no partial indexes here).
    INDEX direct_message_conversations_unread (owner_id, unread_count, partner_id),
    INDEX direct_message_conversations_partner (partner_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
