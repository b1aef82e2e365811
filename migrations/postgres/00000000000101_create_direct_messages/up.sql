-- One row per message. `user_lo`/`user_hi` store the conversation as a canonical pair,
-- so a page of a conversation is one range scan of `direct_messages_conversation`.
-- `direct_messages_unread` holds every column an unread count reads: counting is index-only.
CREATE TABLE direct_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender_id BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL,
    content TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ,
    edited_at TIMESTAMPTZ,
    deleted_by_sender BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_by_recipient BOOLEAN NOT NULL DEFAULT FALSE,
    user_lo BIGINT NOT NULL GENERATED ALWAYS AS (LEAST(sender_id, recipient_id)) STORED,
    user_hi BIGINT NOT NULL GENERATED ALWAYS AS (GREATEST(sender_id, recipient_id)) STORED,
    CHECK (sender_id <> recipient_id)
);
CREATE INDEX direct_messages_conversation ON direct_messages (user_lo, user_hi, id);
CREATE INDEX direct_messages_unread ON direct_messages (recipient_id, sender_id, deleted_by_recipient, id)
    WHERE read_at IS NULL;
CREATE INDEX direct_messages_user_hi ON direct_messages (user_hi);
