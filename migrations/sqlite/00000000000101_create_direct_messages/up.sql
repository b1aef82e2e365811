-- One row per message. `user_lo`/`user_hi` store the conversation as a canonical pair,
-- so a page of a conversation is one range scan of `direct_messages_conversation`.
-- `direct_messages_unread` holds every column an unread count reads, so counting is
-- index-only; `read_at` (always NULL in it) is listed because SQLite does not count a
-- column as covered by the WHERE of a partial index.
CREATE TABLE direct_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    sender_id BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL,
    content TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP,
    edited_at TIMESTAMP,
    deleted_by_sender BOOLEAN NOT NULL DEFAULT 0,
    deleted_by_recipient BOOLEAN NOT NULL DEFAULT 0,
    user_lo BIGINT NOT NULL GENERATED ALWAYS AS (min(sender_id, recipient_id)) STORED,
    user_hi BIGINT NOT NULL GENERATED ALWAYS AS (max(sender_id, recipient_id)) STORED,
    CHECK (sender_id <> recipient_id)
);
CREATE INDEX direct_messages_conversation ON direct_messages (user_lo, user_hi, id);
CREATE INDEX direct_messages_unread ON direct_messages (recipient_id, sender_id, deleted_by_recipient, id, read_at)
    WHERE read_at IS NULL;
CREATE INDEX direct_messages_user_hi ON direct_messages (user_hi);
