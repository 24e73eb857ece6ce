-- The waiting conversations, read on every escalation (place in line) and
-- every offer pass (the queue in dispatch order): partial indexes hold just
-- them, however many open or closed conversations the table holds.
CREATE INDEX conversations_waiting_idx ON conversations (brand_id, priority, queued_at, id) WHERE status IN ('queued', 'offered');
CREATE INDEX conversations_queued_idx ON conversations (priority DESC, queued_at, id) WHERE status = 'queued';
