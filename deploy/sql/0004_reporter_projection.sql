-- The reporter's projection (docs/reporter.md): every event of every topic appended once to
-- ticket_events (unique event_id), and the current state derived from it in the same
-- transaction — tickets, incidents, dlq_entries, agent presence. sb-reporter calls
-- sb_project() with one batch of events; an event already stored changes nothing, so a
-- replayed batch is a no-op, and replaying ticket_events through sb_project() rebuilds the
-- state. An event whose effect fails (a value the tables refuse) is kept in
-- projection_errors with the error instead of stopping the stream.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

ALTER TABLE tickets
    ADD COLUMN tier smallint CHECK (tier BETWEEN 1 AND 3),
    ADD COLUMN customer_tier text,
    ADD COLUMN urgency smallint CHECK (urgency BETWEEN 1 AND 3),
    ADD COLUMN impact smallint CHECK (impact BETWEEN 1 AND 3),
    ADD COLUMN label text,
    ADD COLUMN flags jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN queue text,
    ADD COLUMN contacts integer NOT NULL DEFAULT 0,
    ADD COLUMN last_contact_at timestamptz,
    ADD COLUMN triaged_at timestamptz,
    ADD COLUMN assigned_at timestamptz,
    ADD COLUMN sla_breaches integer NOT NULL DEFAULT 0,
    ADD COLUMN escalation_level text,
    ADD COLUMN merged_into text;

CREATE TABLE projection_errors (
    event_id        uuid PRIMARY KEY,
    type            text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    "offset"        bigint NOT NULL,
    error           text NOT NULL,
    event           jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE projection_errors IS
    'Events the projection could not apply (kept whole, with the database error)';

CREATE TABLE agent_presence (
    agent_id        text PRIMARY KEY,
    status          text NOT NULL,
    capacities      jsonb,
    skills          jsonb,
    since           timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agent_presence IS 'Last known presence of every agent (from agent.presence)';

-- The stored form of an event's payload: clear personal data stays on the contacts topic
-- (short retention) and in the CRM tables, never in the event log.
CREATE FUNCTION sb_stored_payload(t text, p jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE t
        WHEN 'contact.received' THEN
            (p - 'customer' - 'body' - 'subject' - 'attachments' - 'metadata')
            || jsonb_build_object(
                'customer_no', p -> 'customer' ->> 'customer_no',
                'body_bytes', octet_length(p ->> 'body'),
                'attachments', coalesce(jsonb_array_length(p -> 'attachments'), 0))
        WHEN 'agent.replied' THEN
            (p - 'body') || jsonb_build_object('body_bytes', octet_length(p ->> 'body'))
        WHEN 'dlq.entry' THEN p - 'raw_text' - 'raw_base64'
        ELSE p
    END
$$;

-- Applies one stored event to the current-state tables.
CREATE FUNCTION sb_apply_event(ev jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t  text := ev ->> 'type';
    p  jsonb := ev -> 'payload';
    tid text := nullif(ev ->> 'ticket_id', '');
    at timestamptz := (ev ->> 'occurred_at')::timestamptz;
BEGIN
    CASE t
    WHEN 'contact.received' THEN
        INSERT INTO tickets AS k (id, customer_no, channel, created_at, updated_at, contacts,
                                  last_contact_at)
        VALUES (tid, p ->> 'customer_key', p ->> 'channel',
                coalesce((p ->> 'received_at')::timestamptz, at), at, 1,
                coalesce((p ->> 'received_at')::timestamptz, at))
        ON CONFLICT (id) DO UPDATE SET
            contacts = k.contacts + 1,
            last_contact_at = greatest(k.last_contact_at, excluded.last_contact_at),
            created_at = least(k.created_at, excluded.created_at),
            updated_at = greatest(k.updated_at, excluded.updated_at);
    WHEN 'ticket.triaged' THEN
        INSERT INTO tickets AS k (id, customer_no, channel, band, score, domain, nature, stage,
                                  subject, incident_id, tier, customer_tier, urgency, impact,
                                  label, flags, triaged_at, created_at, updated_at)
        VALUES (tid, p ->> 'customer_key', p ->> 'channel', p ->> 'band',
                (p ->> 'score')::smallint, p ->> 'domain', p ->> 'nature', p ->> 'stage',
                coalesce(p ->> 'masked_subject', p -> 'fivew1h' ->> 'what'),
                p ->> 'incident_id', (p ->> 'tier')::smallint, p ->> 'customer_tier',
                (p ->> 'urgency')::smallint, (p ->> 'impact')::smallint, p ->> 'label',
                coalesce(p -> 'flags', '{}'), at, at, at)
        ON CONFLICT (id) DO UPDATE SET
            band = excluded.band, score = excluded.score, domain = excluded.domain,
            nature = excluded.nature, stage = excluded.stage, subject = excluded.subject,
            incident_id = coalesce(excluded.incident_id, k.incident_id),
            tier = excluded.tier, customer_tier = excluded.customer_tier,
            urgency = excluded.urgency, impact = excluded.impact, label = excluded.label,
            flags = excluded.flags, triaged_at = coalesce(k.triaged_at, excluded.triaged_at),
            customer_no = coalesce(k.customer_no, excluded.customer_no),
            channel = coalesce(k.channel, excluded.channel),
            updated_at = greatest(k.updated_at, excluded.updated_at);
    WHEN 'ticket.rescored' THEN
        UPDATE tickets SET band = p ->> 'band', score = (p ->> 'score')::smallint,
               urgency = coalesce((p ->> 'urgency')::smallint, urgency),
               impact = coalesce((p ->> 'impact')::smallint, impact),
               tier = coalesce((p ->> 'tier')::smallint, tier),
               incident_id = coalesce(p ->> 'incident_id', incident_id),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.merged' THEN
        UPDATE tickets SET merged_into = p ->> 'into_ticket_id', updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'incident.detected' THEN
        INSERT INTO incidents AS i (id, domain, signature, opened_at, reported_at, member_count)
        VALUES (p ->> 'incident_id', p ->> 'domain', p ->> 'signature', at, at,
                (p ->> 'member_count')::integer)
        ON CONFLICT (id) DO UPDATE SET
            member_count = greatest(i.member_count, excluded.member_count);
    WHEN 'ticket.queued' THEN
        UPDATE tickets SET queue = p ->> 'queue', status = CASE WHEN status = 'new'
               THEN 'queued' ELSE status END, updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.assigned' THEN
        UPDATE tickets SET owner_agent_id = p ->> 'agent_id', queue = p ->> 'queue',
               assigned_at = coalesce(assigned_at, at),
               status = CASE WHEN status IN ('new', 'queued', 'offered') THEN 'assigned'
                        ELSE status END,
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.offered' THEN
        UPDATE tickets SET status = CASE WHEN status IN ('new', 'queued') THEN 'offered'
               ELSE status END, updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.claimed' THEN
        UPDATE tickets SET claimed_at = coalesce(claimed_at, at),
               owner_agent_id = coalesce(owner_agent_id, p -> 'actor' ->> 'agent_id'),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'agent.replied' THEN
        -- First response: the first public reply by a human agent (SPEC §7).
        UPDATE tickets SET first_response_at = coalesce(first_response_at, at),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid
           AND coalesce((p ->> 'public')::boolean, true)
           AND coalesce(p -> 'actor' ->> 'role', 'agent') <> 'system';
    WHEN 'ticket.status_changed' THEN
        UPDATE tickets SET status = p ->> 'status',
               first_resolved_at = CASE WHEN p ->> 'status' = 'resolved'
                   THEN coalesce(first_resolved_at, at) ELSE first_resolved_at END,
               resolved_at = CASE WHEN p ->> 'status' = 'resolved' THEN at
                   ELSE resolved_at END,
               archived_at = CASE WHEN p ->> 'status' = 'archived' THEN at
                   ELSE archived_at END,
               reopened_count = reopened_count + CASE WHEN p ->> 'status' = 'reopened'
                   THEN 1 ELSE 0 END,
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'csat.received' THEN
        UPDATE tickets SET csat = (p ->> 'score')::smallint, updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'sla.breached' THEN
        UPDATE tickets SET sla_breaches = sla_breaches + 1, updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'sla.escalated' THEN
        UPDATE tickets SET escalation_level = p ->> 'level',
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'agent.presence' THEN
        INSERT INTO agent_presence AS a (agent_id, status, capacities, skills, since)
        VALUES (p ->> 'agent_id', p ->> 'status', p -> 'capacities', p -> 'skills', at)
        ON CONFLICT (agent_id) DO UPDATE SET
            status = excluded.status,
            capacities = coalesce(excluded.capacities, a.capacities),
            skills = coalesce(excluded.skills, a.skills),
            since = excluded.since, updated_at = now()
        WHERE a.since <= excluded.since;
    WHEN 'dlq.entry' THEN
        INSERT INTO dlq_entries (event_id, stage, reason, origin_topic, origin_partition,
                                 origin_offset, raw_size, occurred_at)
        VALUES ((ev ->> 'event_id')::uuid, p ->> 'stage', p ->> 'reason',
                p -> 'origin' ->> 'topic', (p -> 'origin' ->> 'partition')::integer,
                (p -> 'origin' ->> 'offset')::bigint, (p ->> 'raw_size')::integer, at)
        ON CONFLICT (event_id) DO NOTHING;
    ELSE
        NULL; -- stored in ticket_events only
    END CASE;
END
$$;

-- One batch: [{"topic", "partition", "offset", "event": {…envelope…}}, …] in consumption
-- order. Returns the number of events that were new.
CREATE FUNCTION sb_project(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
    ev   jsonb;
    n    integer := 0;
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        ev := item -> 'event';
        BEGIN
            INSERT INTO ticket_events (event_id, ticket_id, type, occurred_at, producer,
                                       trace_id, payload, topic, partition, "offset")
            VALUES ((ev ->> 'event_id')::uuid, nullif(ev ->> 'ticket_id', ''), ev ->> 'type',
                    (ev ->> 'occurred_at')::timestamptz, ev ->> 'producer', ev ->> 'trace_id',
                    sb_stored_payload(ev ->> 'type', ev -> 'payload'), item ->> 'topic',
                    (item ->> 'partition')::integer, (item ->> 'offset')::bigint)
            ON CONFLICT (event_id) DO NOTHING;
            IF FOUND THEN
                PERFORM sb_apply_event(ev);
                n := n + 1;
            END IF;
        EXCEPTION WHEN others THEN
            INSERT INTO projection_errors (event_id, type, topic, partition, "offset", error,
                                           event)
            VALUES ((ev ->> 'event_id')::uuid, coalesce(ev ->> 'type', ''), item ->> 'topic',
                    (item ->> 'partition')::integer, (item ->> 'offset')::bigint, SQLERRM, ev)
            ON CONFLICT (event_id) DO NOTHING;
        END;
    END LOOP;
    RETURN n;
END
$$;
