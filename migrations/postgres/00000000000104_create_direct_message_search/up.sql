-- The search index: per message, one row for each side that still sees it. The crate
-- cuts the words and writes each as a lexeme that starts with its owner's id (see
-- `src/search.rs`), built with `array_to_tsvector` (no parser, no dictionary), so one
-- user's prefix query reads only that user's part of the GIN index. Without `fastupdate`
-- new entries go straight into the index: a pending list would be read whole by every
-- search until a vacuum merged it.
CREATE TABLE direct_message_search (
    message_id BIGINT NOT NULL REFERENCES direct_messages (id) ON DELETE CASCADE,
    owner_id BIGINT NOT NULL,
    terms TSVECTOR NOT NULL,
    PRIMARY KEY (message_id, owner_id)
);
CREATE INDEX direct_message_search_terms ON direct_message_search USING GIN (terms)
    WITH (fastupdate = off);
-- A user's rows newest first: a search for a page of results first reads the user's
-- latest rows, where a common word finds its page without the GIN index's every match.
CREATE INDEX direct_message_search_owner ON direct_message_search (owner_id, message_id);
