-- The sweep abandons waiting conversations older than their brand's maximum
-- wait. It reads only those older than the shortest maximum wait of any
-- brand, through this index, instead of every waiting conversation each
-- second (10,000 rows a second with a backlog of 10,000).
CREATE INDEX conversations_waiting_age_idx ON conversations (created_at) WHERE status IN ('queued', 'offered');
