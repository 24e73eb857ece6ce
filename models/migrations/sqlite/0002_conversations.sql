-- Live handoff: conversations, their messages, offers to agents, earnings.
CREATE TABLE conversations (
    id text PRIMARY KEY,
    brand_id text NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    external_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'offered', 'active', 'resolved', 'closed', 'abandoned')),
    customer_name text NOT NULL DEFAULT '',
    customer_email text NOT NULL DEFAULT '',
    language text NOT NULL,
    skills text NOT NULL DEFAULT '',
    priority integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
    reason text NOT NULL DEFAULT '',
    summary text NOT NULL DEFAULT '',
    metadata text NOT NULL DEFAULT '{}',
    agent_id text REFERENCES agents (id) ON DELETE SET NULL,
    queued_at datetime NOT NULL,
    created_at datetime NOT NULL,
    assigned_at datetime,
    resolved_at datetime,
    closed_at datetime,
    abandoned_at datetime,
    abandon_reason text NOT NULL DEFAULT '',
    resolution_note text NOT NULL DEFAULT '',
    rating integer CHECK (rating BETWEEN 1 AND 5),
    rating_comment text NOT NULL DEFAULT '',
    rated_at datetime,
    last_seq integer NOT NULL DEFAULT 0,
    updated_at datetime NOT NULL
);
CREATE UNIQUE INDEX conversations_open_external_key ON conversations (brand_id, external_id) WHERE status IN ('queued', 'offered', 'active');
CREATE INDEX conversations_queue_idx ON conversations (status, priority, queued_at);
CREATE INDEX conversations_brand_idx ON conversations (brand_id, created_at);
CREATE INDEX conversations_brand_queue_idx ON conversations (brand_id, status, priority, queued_at);
CREATE INDEX conversations_brand_resolved_idx ON conversations (brand_id, resolved_at);
CREATE INDEX conversations_agent_idx ON conversations (agent_id, status);

CREATE TABLE messages (
    id text PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    sender text NOT NULL CHECK (sender IN ('customer', 'agent', 'bot', 'system')),
    sender_id text NOT NULL DEFAULT '',
    client_id text,
    body text NOT NULL,
    sent_at datetime,
    created_at datetime NOT NULL
);
CREATE UNIQUE INDEX messages_conversation_seq_key ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_client_key ON messages (conversation_id, sender, client_id);

CREATE TABLE offers (
    id text PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    status text NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'expired', 'rescinded')),
    pay_minor integer NOT NULL DEFAULT 0,
    surge_minor integer NOT NULL DEFAULT 0,
    currency text NOT NULL,
    explanation text NOT NULL DEFAULT '',
    decline_reason text NOT NULL DEFAULT '',
    created_at datetime NOT NULL,
    expires_at datetime NOT NULL,
    answered_at datetime
);
CREATE UNIQUE INDEX offers_pending_conversation_key ON offers (conversation_id) WHERE status = 'pending';
CREATE UNIQUE INDEX offers_pending_agent_key ON offers (agent_id) WHERE status = 'pending';
CREATE INDEX offers_expiry_idx ON offers (status, expires_at);
CREATE INDEX offers_conversation_idx ON offers (conversation_id, agent_id);

CREATE TABLE earnings (
    id text PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    brand_id text NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    base_minor integer NOT NULL,
    surge_minor integer NOT NULL DEFAULT 0,
    fee_minor integer NOT NULL,
    net_minor integer NOT NULL,
    currency text NOT NULL,
    fee_basis_points integer NOT NULL,
    status text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'payable', 'in_transfer', 'transferred', 'disputed', 'reversed', 'awaiting_stripe')),
    created_at datetime NOT NULL
);
CREATE UNIQUE INDEX earnings_conversation_key ON earnings (conversation_id);
CREATE INDEX earnings_agent_idx ON earnings (agent_id, created_at);

CREATE TABLE platform_fees (
    id text PRIMARY KEY,
    basis_points integer NOT NULL CHECK (basis_points BETWEEN 0 AND 10000),
    effective_at datetime NOT NULL
);
CREATE UNIQUE INDEX platform_fees_effective_key ON platform_fees (effective_at);
INSERT INTO platform_fees (id, basis_points, effective_at) VALUES ('initial', 1500, '2000-01-01 00:00:00+00:00');

ALTER TABLE agents ADD COLUMN missed_offers integer NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN free_since datetime;

ALTER TABLE brands ADD COLUMN min_skill_level integer NOT NULL DEFAULT 1 CHECK (min_skill_level BETWEEN 1 AND 5);
ALTER TABLE agents ADD COLUMN resolved_count integer NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN rating_sum integer NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN rating_count integer NOT NULL DEFAULT 0;
