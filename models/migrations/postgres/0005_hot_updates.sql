-- The busiest updates change no indexed column: a message moves its
-- conversation's last_seq, heartbeats move agents' last_seen_at, accepts
-- and resolves move agents' counters. With room left on each page they are
-- HOT (heap-only) updates, which skip every index of the table (nine on
-- conversations) instead of adding an entry to each. Pages written from now
-- on keep a fifth free.
ALTER TABLE conversations SET (fillfactor = 80);
ALTER TABLE agents SET (fillfactor = 80);
