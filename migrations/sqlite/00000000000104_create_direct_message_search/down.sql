DROP TRIGGER direct_message_search_forget;
DROP TABLE direct_message_search;
