-- sb-slawatch (docs/slawatch.md, "Storage and restart"): inputs read before their
-- ticket's ticket.triaged. After a take-over the backlogs of sb.tickets.v1,
-- sb.routing.v1 and sb.activity.v1 are read side by side, so a reply or a resolve can
-- come before the triage that started the ticket's clocks. Such an input is kept here
-- until the triage is read, then applied after it and deleted; what is still here when
-- the partition's backlog is read belongs to no ticket of the group and is deleted.
-- Written in the same transaction as the snapshot rows and the offsets (its offset is
-- included in sla_consumer_offsets), so that a kill loses none and applies none twice.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE TABLE sla_deferred_inputs (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    part            integer NOT NULL CHECK (part >= 0),
    input_offset    bigint NOT NULL CHECK (input_offset >= 0),
    ticket_id       text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    envelope        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, part, input_offset)
);
CREATE INDEX sla_deferred_inputs_part ON sla_deferred_inputs (consumer_group, part);
COMMENT ON TABLE sla_deferred_inputs IS
    'sb-slawatch: inputs read before their ticket''s triage while a partition catches up (applied after it)';
COMMENT ON COLUMN sla_deferred_inputs.envelope IS
    'The message as read from the topic (the event envelope, JSON)';
