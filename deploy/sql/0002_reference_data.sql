-- Reference data and lookups: stored customer tier, team time zones and their lead and
-- supervisor links, SLA policies with first-response and resolution targets per row,
-- ticket milestones, the indexes of the common lookups and a comment on every table.
-- Schema: public (every program uses unqualified names); BI reads schema bi.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.
-- Never edit an applied migration: add a new numbered file.

-- Customer tier (SPEC §2): 3 VIP, 2 regular, 1 new or low-frequency. Stored, written
-- by whoever writes the inputs (sbctl load customers computes it from annual_spend and
-- is_partner with its configured thresholds; intake creates provisional customers as 1).
ALTER TABLE customers
    ADD COLUMN tier smallint NOT NULL DEFAULT 1 CHECK (tier BETWEEN 1 AND 3);
COMMENT ON COLUMN customers.tier IS
    '3 VIP (spend >= VIP threshold or partner), 2 regular, 1 new/low-frequency; set by the loader';
COMMENT ON COLUMN customers.is_enterprise IS
    'Enterprise account: an enterprise VIP raises the impact score (SPEC §2)';
COMMENT ON COLUMN customers.provisional IS
    'Created by intake for an unknown contact; a CRM load of the same customer_no clears it';
COMMENT ON COLUMN customer_identities.value IS
    'Normalized: phone digits only (mainland +86/0086 prefix removed), email lowercased';

-- Teams: an optional time zone of their own (NULL: the calendar's), and lead and
-- supervisor pointing at real agents.
ALTER TABLE teams ADD COLUMN timezone text;
ALTER TABLE teams
    ADD CONSTRAINT teams_lead_agent_fk FOREIGN KEY (lead_agent_id)
        REFERENCES agents (id) ON DELETE SET NULL,
    ADD CONSTRAINT teams_supervisor_agent_fk FOREIGN KEY (supervisor_agent_id)
        REFERENCES agents (id) ON DELETE SET NULL;
COMMENT ON COLUMN teams.timezone IS 'IANA zone of the team; NULL means the calendar''s zone';

-- SLA policies, one row per situation. kind 'band' carries the per-band targets; the
-- other kinds are the special targets of SPEC §3-§4 (see docs/database.md for which
-- clock each target starts). NULL band, channel, team or period = any. A row for a
-- declared period (promotion_peak, outage) replaces the row without one while the
-- period lasts. This table holds reference data only: reload it with
-- `sbctl load policies deploy/config/policies.json`.
DROP TABLE sla_policies;
CREATE TABLE sla_policies (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
    band            text CHECK (band IN ('P1', 'P2', 'P3', 'P4')),
    channel         text,
    team_id         text REFERENCES teams (id) ON DELETE CASCADE,
    period_kind     text CHECK (period_kind IN ('promotion_peak', 'outage')),
    first_response_s integer CHECK (first_response_s > 0),
    resolution_s    integer CHECK (resolution_s > 0),
    resolution_business_days smallint CHECK (resolution_business_days > 0),
    business_time   boolean NOT NULL DEFAULT false,
    warn_fractions  numeric[] NOT NULL DEFAULT '{0.75,0.9}'
        CHECK (0 < ALL (warn_fractions) AND 1 > ALL (warn_fractions)),
    notify_at_start text CHECK (notify_at_start IN ('lead', 'supervisor')),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sla_policies_has_target CHECK (
        first_response_s IS NOT NULL OR resolution_s IS NOT NULL
        OR resolution_business_days IS NOT NULL),
    CONSTRAINT sla_policies_key UNIQUE NULLS NOT DISTINCT
        (kind, band, channel, team_id, period_kind)
);
COMMENT ON TABLE sla_policies IS
    'SLA targets per situation (kind), band, channel, team and declared period; NULL = any';
COMMENT ON COLUMN sla_policies.first_response_s IS
    'Target of the first clock of the kind (first response, first touch, contact, review, claim)';
COMMENT ON COLUMN sla_policies.resolution_s IS 'Target of the resolution clock, in seconds';
COMMENT ON COLUMN sla_policies.resolution_business_days IS
    'Resolution target in working days of the team calendar (instead of seconds)';
COMMENT ON COLUMN sla_policies.business_time IS
    'Seconds count only within the business hours of the team calendar';
COMMENT ON COLUMN sla_policies.warn_fractions IS
    'Fractions of the target at which a warning is raised, ascending, each in (0, 1)';
COMMENT ON COLUMN sla_policies.notify_at_start IS
    'Level told as soon as the clock starts (P1: the supervisor, at once)';

-- Ticket milestones used by the metric definitions (SPEC §7).
ALTER TABLE tickets
    ADD COLUMN first_resolved_at timestamptz,
    ADD COLUMN reopened_count integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN tickets.status IS
    'new, claimed, in_progress, pending_customer, resolved, supervisor_review, '
    'awaiting_archive, archived';
COMMENT ON COLUMN tickets.created_at IS 'First customer contact of the ticket';
COMMENT ON COLUMN tickets.first_resolved_at IS 'First resolution (resolved_at is the last one)';

-- Lookups: routing by skill, backlog by band and status, recent changes, active
-- declared periods, tokens per agent, QA coverage per agent, DLQ by time.
CREATE INDEX agent_skills_skill ON agent_skills (skill, level);
CREATE INDEX agents_active ON agents (team_id) WHERE active;
CREATE INDEX tickets_band_status ON tickets (band, status);
CREATE INDEX tickets_updated ON tickets (updated_at);
CREATE INDEX declared_periods_time ON declared_periods (starts_at, ends_at);
CREATE INDEX api_tokens_agent ON api_tokens (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX qa_samples_agent_day ON qa_samples (agent_id, sample_day);
CREATE INDEX dlq_entries_time ON dlq_entries (occurred_at);
CREATE INDEX incidents_open ON incidents (opened_at) WHERE closed_at IS NULL;

-- A comment on every table (0001 left some without).
COMMENT ON TABLE schema_migrations IS
    'Applied migrations (deploy/sql/NNNN_name.sql), written by sbctl migrate';
COMMENT ON TABLE calendar_hours IS
    'Opening hours per ISO weekday (1 = Monday) in the calendar''s time zone';
COMMENT ON TABLE holidays IS
    'Days off (working_day = false) and compensatory working days (true) per calendar';
COMMENT ON TABLE declared_periods IS
    'Declared promotion peaks and outages: their own SLA targets and a canned notice';
COMMENT ON TABLE consumer_offsets IS
    'Kafka offsets stored with the rows they produced (reporter exactly-once writes)';
COMMENT ON SCHEMA bi IS 'Documented read-only views for BI tools';
