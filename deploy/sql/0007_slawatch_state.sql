-- sb-slawatch state (docs/slawatch.md): the snapshot of every clock an instance holds,
-- the ticket facts its follow-ups need, and the next offset of each consumed partition
-- whose effects the snapshot includes. All three are written in one transaction per
-- flush, after the batch's events were acknowledged by Kafka, and read back when a
-- partition is taken over (start, restart, rebalance). Rows belong to a consumer group:
-- groups (a test's own, a staging copy) never share clocks.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE TABLE sla_clock_snapshots (
    consumer_group  text NOT NULL,
    part            integer NOT NULL CHECK (part >= 0),
    ticket_id       text NOT NULL,
    kind            text NOT NULL,
    calendar_id     text,
    state           text NOT NULL,
    next_due        timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, ticket_id, kind)
);
CREATE INDEX sla_clock_snapshots_part ON sla_clock_snapshots (consumer_group, part);
COMMENT ON TABLE sla_clock_snapshots IS
    'sb-slawatch: every clock and follow-up of the partitions a group owns (restored on take-over)';
COMMENT ON COLUMN sla_clock_snapshots.state IS
    'The clock''s fields as space-separated integers, format "v1" (docs/slawatch.md)';

CREATE TABLE sla_ticket_facts (
    consumer_group  text NOT NULL,
    part            integer NOT NULL CHECK (part >= 0),
    ticket_id       text NOT NULL,
    customer_key    text NOT NULL,
    channel         text NOT NULL,
    band            text,
    nature          text,
    agent_id        text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, ticket_id)
);
CREATE INDEX sla_ticket_facts_part ON sla_ticket_facts (consumer_group, part);
COMMENT ON TABLE sla_ticket_facts IS
    'sb-slawatch: what the clocks of a ticket need besides the clocks (re-targets, follow-ups)';

CREATE TABLE sla_consumer_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    part            integer NOT NULL CHECK (part >= 0),
    next_offset     bigint NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, part)
);
COMMENT ON TABLE sla_consumer_offsets IS
    'sb-slawatch: the next offset per partition already reflected in the snapshots (replays below it are skipped)';
