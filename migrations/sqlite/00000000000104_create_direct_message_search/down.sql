DROP TABLE direct_message_search;
