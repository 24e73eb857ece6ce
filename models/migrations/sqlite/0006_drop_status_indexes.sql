-- Two indexes from 0002 that no query needs any more: the queue reads use
-- 0004's partial indexes (conversations_queued_idx, conversations_waiting_idx)
-- and the chats in progress use conversations_agent_idx or the open
-- conversations' unique index. Both hold status, so every change of a
-- conversation's status (four or more in its life) and every insert wrote
-- an entry into each of them for nothing.
DROP INDEX IF EXISTS conversations_queue_idx;
DROP INDEX IF EXISTS conversations_brand_queue_idx;
