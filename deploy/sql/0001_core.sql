-- Switchboard core schema: CRM view, organisation (teams, agents, skills), SLA policies
-- and calendars, tickets and their append-only event log, reporting tables, API tokens.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.
-- Never edit an applied migration: add a new numbered file.

-- Customers as the CRM knows them; tier inputs per SPEC §2 (annual spend, partner).
CREATE TABLE customers (
    customer_no     text PRIMARY KEY,
    name            text,
    annual_spend    numeric(14, 2) NOT NULL DEFAULT 0 CHECK (annual_spend >= 0),
    is_partner      boolean NOT NULL DEFAULT false,
    is_enterprise   boolean NOT NULL DEFAULT false,
    provisional     boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE customers IS 'CRM view of customers; provisional rows are created by intake for unknown contacts';

-- Every way a customer can be recognised (normalized: phone digits, lowercased email).
CREATE TABLE customer_identities (
    kind            text NOT NULL CHECK (kind IN ('customer_no', 'phone', 'email', 'wechat_openid', 'social_id')),
    value           text NOT NULL,
    customer_no     text NOT NULL REFERENCES customers (customer_no) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
CREATE INDEX customer_identities_customer ON customer_identities (customer_no);
COMMENT ON TABLE customer_identities IS 'Identities (phone, email, open ids) resolving to a customer';

-- Business calendars: opening hours per weekday in a time zone, and holidays.
CREATE TABLE calendars (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    timezone        text NOT NULL DEFAULT 'Asia/Shanghai'
);
CREATE TABLE calendar_hours (
    calendar_id     text NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    weekday         smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7), -- ISO: 1 = Monday
    opens           time NOT NULL,
    closes          time NOT NULL CHECK (closes > opens),
    PRIMARY KEY (calendar_id, weekday, opens)
);
CREATE TABLE holidays (
    calendar_id     text NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    day             date NOT NULL,
    name            text,
    working_day     boolean NOT NULL DEFAULT false, -- true: a compensatory working day
    PRIMARY KEY (calendar_id, day)
);
COMMENT ON TABLE calendars IS 'Business-hour calendars used for SLA clocks and working-day arithmetic';

-- Declared periods switch SLA targets and attach a canned customer notice (SPEC §4).
CREATE TABLE declared_periods (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('promotion_peak', 'outage')),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL CHECK (ends_at > starts_at),
    notice          text,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    lead_agent_id   text,
    supervisor_agent_id text,
    calendar_id     text REFERENCES calendars (id),
    dedicated_to    text[] NOT NULL DEFAULT '{}' -- e.g. {vip} or product lines
);
COMMENT ON TABLE teams IS 'Agent teams with their lead, supervisor and calendar';

CREATE TABLE agents (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    team_id         text REFERENCES teams (id),
    role            text NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'lead', 'supervisor', 'admin')),
    languages       text[] NOT NULL DEFAULT '{zh}',
    product_lines   text[] NOT NULL DEFAULT '{}',
    capacity_call   smallint NOT NULL DEFAULT 1 CHECK (capacity_call BETWEEN 0 AND 10),
    capacity_chat   smallint NOT NULL DEFAULT 3 CHECK (capacity_chat BETWEEN 0 AND 50),
    capacity_email  smallint NOT NULL DEFAULT 10 CHECK (capacity_email BETWEEN 0 AND 200),
    capacity_social smallint NOT NULL DEFAULT 5 CHECK (capacity_social BETWEEN 0 AND 100),
    active          boolean NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_team ON agents (team_id);
COMMENT ON TABLE agents IS 'The roster: role, languages, product lines and capacity per channel';

CREATE TABLE agent_skills (
    agent_id        text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    skill           text NOT NULL,
    level           smallint NOT NULL CHECK (level BETWEEN 1 AND 5),
    PRIMARY KEY (agent_id, skill)
);
COMMENT ON TABLE agent_skills IS 'Skill tags (domains, channels, specialities) with levels 1-5';

-- SLA targets. kind: first_response, resolution, claim, or a special target of SPEC §4
-- (order_anomaly_contact, return_review, complex_complaint, after_sale_first_response,
-- public_negative, incident_report, first_touch). NULL band/channel/team = any.
CREATE TABLE sla_policies (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    band            text CHECK (band IN ('P1', 'P2', 'P3', 'P4')),
    channel         text,
    team_id         text REFERENCES teams (id),
    period_kind     text CHECK (period_kind IN ('promotion_peak', 'outage')),
    target_s        integer NOT NULL CHECK (target_s > 0),
    business_time   boolean NOT NULL DEFAULT false,
    warn_fractions  numeric[] NOT NULL DEFAULT '{0.75,0.9}',
    escalate_to     text CHECK (escalate_to IN ('lead', 'supervisor')),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX sla_policies_key ON sla_policies
    (kind, coalesce(band, ''), coalesce(channel, ''), coalesce(team_id, ''), coalesce(period_kind, ''));
COMMENT ON TABLE sla_policies IS 'SLA targets per kind, band, channel, team and declared period';

-- Current state of every ticket (a projection of ticket_events).
CREATE TABLE tickets (
    id              text PRIMARY KEY,
    customer_no     text,
    channel         text,
    status          text NOT NULL DEFAULT 'new',
    band            text CHECK (band IN ('P1', 'P2', 'P3', 'P4')),
    score           smallint,
    domain          text,
    nature          text,
    stage           text,
    subject         text,
    owner_agent_id  text,
    team_id         text,
    assistants      text[] NOT NULL DEFAULT '{}',
    incident_id     text,
    csat            smallint CHECK (csat BETWEEN 1 AND 5),
    created_at      timestamptz NOT NULL DEFAULT now(),
    first_response_at timestamptz,
    claimed_at      timestamptz,
    resolved_at     timestamptz,
    archived_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_customer ON tickets (customer_no);
CREATE INDEX tickets_owner ON tickets (owner_agent_id) WHERE owner_agent_id IS NOT NULL;
CREATE INDEX tickets_status ON tickets (status);
COMMENT ON TABLE tickets IS 'Current state of each ticket, projected from ticket_events';

-- Append-only log of every event that concerns a ticket; event_id makes replays no-ops.
CREATE TABLE ticket_events (
    event_id        uuid PRIMARY KEY,
    ticket_id       text,
    type            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    producer        text NOT NULL,
    trace_id        text,
    payload         jsonb NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    "offset"        bigint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, occurred_at);
CREATE INDEX ticket_events_type_time ON ticket_events (type, occurred_at);
COMMENT ON TABLE ticket_events IS 'Append-only event log (unique event_id)';

-- Consumed offsets stored in the same transaction as the rows they produced, so that a
-- crash between the database commit and the Kafka commit repeats nothing.
CREATE TABLE consumer_offsets (
    group_id        text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

CREATE TABLE incidents (
    id              text PRIMARY KEY,
    domain          text,
    signature       text,
    opened_at       timestamptz NOT NULL,
    reported_at     timestamptz,
    closed_at       timestamptz,
    member_count    integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE incidents IS 'Clusters of similar contacts (many customers affected)';

CREATE TABLE dlq_entries (
    event_id        uuid PRIMARY KEY,
    stage           text NOT NULL,
    reason          text NOT NULL,
    origin_topic    text,
    origin_partition integer,
    origin_offset   bigint,
    raw_size        integer,
    occurred_at     timestamptz NOT NULL
);
COMMENT ON TABLE dlq_entries IS 'Messages a stage could not process, with the reason';

CREATE TABLE reports (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('daily', 'weekly', 'monthly', 'collaboration_monthly', 'qa_weekly')),
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    generated_at    timestamptz NOT NULL DEFAULT now(),
    content         jsonb NOT NULL,
    csv             text,
    html            text,
    UNIQUE (kind, period_start)
);
COMMENT ON TABLE reports IS 'Scheduled reports; regenerating a period replaces its row';

CREATE TABLE qa_samples (
    ticket_id       text NOT NULL,
    sample_day      date NOT NULL,
    agent_id        text,
    seed            bigint NOT NULL,
    reviewed_by     text,
    score           smallint,
    notes           text,
    PRIMARY KEY (ticket_id, sample_day)
);
COMMENT ON TABLE qa_samples IS 'Conversations drawn for quality review';

-- Bearer tokens are stored as SHA-256 hex only; the clear token is shown once.
CREATE TABLE api_tokens (
    id              bigserial PRIMARY KEY,
    token_sha256    char(64) NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    role            text NOT NULL CHECK (role IN ('agent', 'lead', 'supervisor', 'admin')),
    agent_id        text REFERENCES agents (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
COMMENT ON TABLE api_tokens IS 'API bearer tokens (hashes only) with their role';

-- The schema read by BI tools (views arrive with the reporter).
CREATE SCHEMA IF NOT EXISTS bi;
