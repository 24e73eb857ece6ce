-- Three indexes from 0002 held every row, although their queries read only
-- some: the brand's resolution times (RecentTimes) only conversations with
-- a resolution time, an agent's chats only conversations with an agent, and
-- the expiry sweep only pending offers. Every insert, and on PostgreSQL
-- every update that is not HOT (each change of status: about three in a
-- conversation's life before it has an agent, one when an offer is
-- answered), wrote an entry into each for a row its query cannot return,
-- and the expiry index grew with every offer ever made. Partial, they hold
-- a conversation from its accept on (agent) or from its resolution on
-- (resolution time), and an offer while it is pending. The queries'
-- conditions imply the predicates: agent_id = ... and resolved_at IS NOT
-- NULL whatever the parameters, and the sweeps spell out 'pending' so a
-- prepared plan still uses the expiry index. Like every migration this runs
-- in one transaction: each rebuild holds its table's write lock while it
-- reads the table.
DROP INDEX IF EXISTS conversations_brand_resolved_idx;
CREATE INDEX conversations_brand_resolved_idx ON conversations (brand_id, resolved_at) WHERE resolved_at IS NOT NULL;
DROP INDEX IF EXISTS conversations_agent_idx;
CREATE INDEX conversations_agent_idx ON conversations (agent_id, status) WHERE agent_id IS NOT NULL;
DROP INDEX IF EXISTS offers_expiry_idx;
CREATE INDEX offers_expiry_idx ON offers (expires_at) WHERE status = 'pending';
