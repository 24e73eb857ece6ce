-- The sweep closes resolved conversations once their rating window ends:
-- a partial index keeps that to the conversations still resolved, however
-- many closed ones history holds.
CREATE INDEX conversations_resolved_idx ON conversations (resolved_at) WHERE status = 'resolved';
