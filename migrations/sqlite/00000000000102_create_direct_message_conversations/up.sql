-- One row per (owner, partner): the owner's view of a conversation, kept up to date in
-- the same transaction as every send, read, delete, so an inbox page is one range scan.
CREATE TABLE direct_message_conversations (
    owner_id BIGINT NOT NULL,
    partner_id BIGINT NOT NULL,
    last_message_id BIGINT,
    unread_count BIGINT NOT NULL DEFAULT 0,
    -- The latest `sent_at` of the conversation, read with its lock by the next send.
    last_sent_at TIMESTAMP,
    -- The owner archived it: out of their inbox until a new message arrives.
    archived BOOLEAN NOT NULL DEFAULT 0,
    -- The owner muted it: a flag for the app's notifications, nothing else.
    muted BOOLEAN NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, partner_id),
    CHECK (owner_id <> partner_id),
    CHECK (unread_count >= 0)
) WITHOUT ROWID;
CREATE INDEX direct_message_conversations_latest
    ON direct_message_conversations (owner_id, last_message_id);
-- The inbox screen and its archive, each latest first.
CREATE INDEX direct_message_conversations_inbox
    ON direct_message_conversations (owner_id, archived, last_message_id);
-- The partners with something unread, for `unread_count`.
CREATE INDEX direct_message_conversations_unread
    ON direct_message_conversations (owner_id, partner_id, unread_count)
    WHERE unread_count > 0;
CREATE INDEX direct_message_conversations_partner
    ON direct_message_conversations (partner_id);
