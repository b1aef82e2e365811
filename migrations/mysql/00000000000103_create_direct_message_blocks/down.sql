DROP TABLE direct_message_blocks;
