-- The search index: per message, one row for each side that still sees it, at rowid
-- `2 * id` (sender) and `2 * id + 1` (recipient). The crate cuts the words and writes
-- each as a term that starts with its owner's id (see `src/search.rs`), so the `ascii`
-- tokenizer only splits on the spaces between terms, and one user's search reads only
-- that user's terms. Contentless: the text is in `direct_messages`; rows can still be
-- deleted and rewritten by rowid.
CREATE VIRTUAL TABLE direct_message_search USING fts5 (
    terms,
    content = '',
    contentless_delete = 1,
    tokenize = 'ascii',
    detail = 'none'
);
-- A message that goes (unsent, deleted by both sides, purged) leaves the index with it.
CREATE TRIGGER direct_message_search_forget AFTER DELETE ON direct_messages BEGIN
    DELETE FROM direct_message_search WHERE rowid IN (2 * old.id, 2 * old.id + 1);
END;
