-- The search index: per message, one row for each side that still sees it. The crate
-- cuts the words and writes each as a term that starts with its owner's id (see
-- `src/search.rs`): every term has at least three characters (InnoDB's
-- `innodb_ft_min_token_size`), none is a stopword, and the binary collation compares
-- them as written, so one user's prefix query reads only that user's terms.
CREATE TABLE direct_message_search (
    message_id BIGINT NOT NULL,
    owner_id BIGINT NOT NULL,
    terms MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (message_id, owner_id),
    FULLTEXT INDEX direct_message_search_terms (terms),
    -- A user's rows newest first: a search for a page of results first reads the user's
    -- latest rows, where a common word finds its page without every match of the index.
    INDEX direct_message_search_owner (owner_id, message_id),
    CONSTRAINT direct_message_search_message FOREIGN KEY (message_id)
        REFERENCES direct_messages (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
