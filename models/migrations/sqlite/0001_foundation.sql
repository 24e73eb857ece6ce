-- Foundation: accounts, sessions, signing keys, brands, agents, audit, mail.
CREATE TABLE signing_keys (
    id text PRIMARY KEY,
    secret text NOT NULL,
    created_at datetime NOT NULL
);

CREATE TABLE users (
    id text PRIMARY KEY,
    email text NOT NULL,
    password_hash text NOT NULL,
    display_name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('agent', 'brand', 'operator')),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at datetime NOT NULL,
    updated_at datetime NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    created_at datetime NOT NULL,
    expires_at datetime NOT NULL,
    revoked_at datetime
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE brands (
    id text PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL,
    time_zone text NOT NULL DEFAULT 'UTC',
    languages text NOT NULL DEFAULT 'en',
    pay_rate_minor integer NOT NULL DEFAULT 0 CHECK (pay_rate_minor >= 0),
    currency text NOT NULL DEFAULT 'USD',
    money_recorded_at datetime,
    offer_timeout_seconds integer NOT NULL DEFAULT 20 CHECK (offer_timeout_seconds BETWEEN 5 AND 120),
    max_wait_seconds integer NOT NULL DEFAULT 900 CHECK (max_wait_seconds BETWEEN 30 AND 86400),
    min_rating real NOT NULL DEFAULT 0 CHECK (min_rating >= 0 AND min_rating <= 5),
    min_qa_score real NOT NULL DEFAULT 0 CHECK (min_qa_score >= 0 AND min_qa_score <= 100),
    require_certification integer NOT NULL DEFAULT 0,
    created_at datetime NOT NULL,
    updated_at datetime NOT NULL
);
CREATE UNIQUE INDEX brands_slug_key ON brands (slug);

CREATE TABLE brand_members (
    brand_id text NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'reviewer')),
    created_at datetime NOT NULL,
    PRIMARY KEY (brand_id, user_id)
);
CREATE INDEX brand_members_user_idx ON brand_members (user_id);

CREATE TABLE brand_skills (
    id text PRIMARY KEY,
    brand_id text NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    slug text NOT NULL,
    name text NOT NULL,
    created_at datetime NOT NULL
);
CREATE UNIQUE INDEX brand_skills_brand_slug_key ON brand_skills (brand_id, slug);

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    brand_id text NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    name text NOT NULL,
    prefix text NOT NULL,
    digest text NOT NULL,
    created_by text REFERENCES users (id) ON DELETE SET NULL,
    created_at datetime NOT NULL,
    last_used_at datetime,
    revoked_at datetime
);
CREATE UNIQUE INDEX api_keys_digest_key ON api_keys (digest);
CREATE INDEX api_keys_brand_idx ON api_keys (brand_id);

CREATE TABLE invitations (
    id text PRIMARY KEY,
    brand_id text NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    email text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'reviewer')),
    invited_by text REFERENCES users (id) ON DELETE SET NULL,
    created_at datetime NOT NULL,
    expires_at datetime NOT NULL,
    accepted_at datetime,
    revoked_at datetime
);
CREATE INDEX invitations_brand_idx ON invitations (brand_id);

CREATE TABLE agents (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bio text NOT NULL DEFAULT '',
    max_concurrent integer NOT NULL DEFAULT 1 CHECK (max_concurrent BETWEEN 1 AND 3),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'suspended')),
    decision_reason text NOT NULL DEFAULT '',
    decided_by text REFERENCES users (id) ON DELETE SET NULL,
    decided_at datetime,
    presence text NOT NULL DEFAULT 'offline' CHECK (presence IN ('offline', 'online', 'away')),
    last_seen_at datetime,
    created_at datetime NOT NULL,
    updated_at datetime NOT NULL
);
CREATE UNIQUE INDEX agents_user_key ON agents (user_id);
CREATE INDEX agents_status_idx ON agents (status, created_at);

CREATE TABLE agent_languages (
    agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    language text NOT NULL,
    PRIMARY KEY (agent_id, language)
);

CREATE TABLE agent_skills (
    agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    skill text NOT NULL,
    level integer NOT NULL CHECK (level BETWEEN 1 AND 5),
    PRIMARY KEY (agent_id, skill)
);
CREATE INDEX agent_skills_skill_idx ON agent_skills (skill, level);

CREATE TABLE audit_log (
    id text PRIMARY KEY,
    actor_id text REFERENCES users (id) ON DELETE SET NULL,
    brand_id text REFERENCES brands (id) ON DELETE SET NULL,
    action text NOT NULL,
    target_type text NOT NULL DEFAULT '',
    target_id text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT '',
    created_at datetime NOT NULL
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at);
CREATE INDEX audit_log_brand_idx ON audit_log (brand_id, created_at);

CREATE TABLE mail_outbox (
    id text PRIMARY KEY,
    to_addr text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    created_at datetime NOT NULL,
    sent_at datetime,
    error text NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_created_idx ON mail_outbox (created_at);
