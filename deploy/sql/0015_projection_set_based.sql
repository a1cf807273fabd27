-- The projection batch, set-based (docs/reporter.md). Until now sb_project() took the
-- events one by one, each in a subtransaction of its own, and every event was one UPDATE
-- of its ticket — about ten writes of the same wide row per ticket and batch, each with
-- its index entries. Now a batch is:
--   1. its events staged in one pass (jsonb_array_elements), the new ones appended to
--      ticket_events by one INSERT … SELECT … ON CONFLICT DO NOTHING;
--   2. the rows of their tickets made sure of by one INSERT … SELECT;
--   3. each ticket's row locked (in id order, so that two instances cannot deadlock), its
--      new events folded over it in consumption order in memory (sb_ticket_step, the one
--      definition of what an event does to a ticket), and every changed row written back
--      by one UPDATE … FROM;
--   4. the few other effects (incidents, agent presence, dead letters) by sb_apply_event,
--      in order.
-- All in the caller's transaction. A batch holding an event whose values the tables
-- refuse falls back to the former path (event by event, the refused one kept in
-- projection_errors), so no batch is lost to one bad event. Replays still change nothing:
-- an event already in ticket_events has no effect.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

-- What one event does to its ticket's row (the cases of 0009's sb_apply_event): returns
-- the row changed, or k itself when the event has no effect on it. Assignments read the
-- row as it was before the event, as the SET list of an UPDATE does. Polymorphic: k is a
-- row of whichever tickets table the search path names (sbctl replay projects into a
-- schema of its own with tables of the same shape).
CREATE FUNCTION sb_ticket_step(k anyelement, ev jsonb) RETURNS anyelement
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o  record := k; -- the row before the event
    r  record := k; -- the row after it
    t  text := ev ->> 'type';
    p  jsonb := ev -> 'payload';
    at timestamptz := (ev ->> 'occurred_at')::timestamptz;
    rc timestamptz;
BEGIN
    CASE t
    WHEN 'contact.received' THEN
        rc := coalesce((p ->> 'received_at')::timestamptz, at);
        r.customer_no := coalesce(o.customer_no, p ->> 'customer_key');
        r.channel := coalesce(o.channel, p ->> 'channel');
        r.contacts := o.contacts + 1;
        r.last_contact_at := greatest(o.last_contact_at, rc);
        r.created_at := least(o.created_at, rc);
    WHEN 'ticket.triaged' THEN
        r.band := p ->> 'band';
        r.score := (p ->> 'score')::smallint;
        r.domain := p ->> 'domain';
        r.nature := p ->> 'nature';
        r.stage := p ->> 'stage';
        r.subject := coalesce(p ->> 'masked_subject', p -> 'fivew1h' ->> 'what');
        r.incident_id := coalesce(p ->> 'incident_id', o.incident_id);
        r.tier := (p ->> 'tier')::smallint;
        r.customer_tier := p ->> 'customer_tier';
        r.urgency := (p ->> 'urgency')::smallint;
        r.impact := (p ->> 'impact')::smallint;
        r.label := p ->> 'label';
        r.flags := coalesce(p -> 'flags', '{}');
        r.triaged_at := coalesce(o.triaged_at, at);
        r.customer_no := coalesce(o.customer_no, p ->> 'customer_key');
        r.channel := coalesce(o.channel, p ->> 'channel');
    WHEN 'ticket.rescored' THEN
        r.band := p ->> 'band';
        r.score := (p ->> 'score')::smallint;
        r.urgency := coalesce((p ->> 'urgency')::smallint, o.urgency);
        r.impact := coalesce((p ->> 'impact')::smallint, o.impact);
        r.tier := coalesce((p ->> 'tier')::smallint, o.tier);
        r.incident_id := coalesce(p ->> 'incident_id', o.incident_id);
    WHEN 'ticket.merged' THEN
        r.merged_into := p ->> 'into_ticket_id';
    WHEN 'ticket.queued' THEN
        r.queue := p ->> 'queue';
        r.status := CASE WHEN o.status = 'new' THEN 'queued' ELSE o.status END;
    WHEN 'ticket.assigned' THEN
        r.owner_agent_id := p ->> 'agent_id';
        r.queue := p ->> 'queue';
        r.assigned_at := coalesce(o.assigned_at, at);
        r.status := CASE WHEN o.status IN ('new', 'queued', 'offered') THEN 'assigned'
                    ELSE o.status END;
    WHEN 'ticket.offered' THEN
        r.status := CASE WHEN o.status IN ('new', 'queued') THEN 'offered' ELSE o.status END;
    WHEN 'ticket.claimed' THEN
        r.claimed_at := coalesce(o.claimed_at, at);
        r.owner_agent_id := coalesce(o.owner_agent_id, p -> 'actor' ->> 'agent_id');
        r.status := CASE WHEN o.status IN ('new', 'queued', 'offered', 'assigned')
                    THEN 'claimed' ELSE o.status END;
    WHEN 'agent.replied' THEN
        -- First response: the first public reply by a human agent (SPEC §7).
        IF NOT (coalesce((p ->> 'public')::boolean, true)
                AND coalesce(p -> 'actor' ->> 'role', 'agent') <> 'system') THEN
            RETURN o;
        END IF;
        r.first_response_at := coalesce(o.first_response_at, at);
    WHEN 'ticket.status_changed' THEN
        r.status := p ->> 'status';
        IF p ->> 'status' = 'resolved' THEN
            r.first_resolved_at := coalesce(o.first_resolved_at, at);
            r.resolved_at := at;
        ELSIF p ->> 'status' = 'archived' THEN
            r.archived_at := at;
        ELSIF p ->> 'status' = 'reopened' THEN
            r.reopened_count := o.reopened_count + 1;
        END IF;
        r.category := coalesce(p ->> 'category', o.category);
        r.handling_minutes := coalesce((p ->> 'handling_minutes')::integer, o.handling_minutes);
        r.closing_note := coalesce(p ->> 'note', o.closing_note);
    WHEN 'csat.received' THEN
        r.csat := (p ->> 'score')::smallint;
        r.csat_comment := coalesce(p ->> 'comment', o.csat_comment);
    WHEN 'ticket.reviewed' THEN
        r.review_outcome := p ->> 'outcome';
        r.reviewed_by := p -> 'actor' ->> 'agent_id';
        r.status := CASE p ->> 'outcome' WHEN 'approved' THEN 'awaiting_archive'
                    ELSE 'sent_back' END;
        IF p ->> 'outcome' = 'sent_back' THEN
            r.sent_back_count := o.sent_back_count + 1;
            r.sent_back_reason := p ->> 'reason';
        END IF;
    WHEN 'ticket.note_added' THEN
        r.progress_percent := coalesce((p ->> 'percent')::smallint, o.progress_percent);
        r.milestone := coalesce(p ->> 'milestone', o.milestone);
        IF p ? 'percent' OR p ->> 'kind' = 'progress' THEN
            r.progress := o.progress || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                'at', at, 'by', p -> 'actor' ->> 'agent_id', 'percent', p -> 'percent',
                'milestone', p -> 'milestone', 'text', p -> 'text')));
        END IF;
        IF p ->> 'kind' = 'key_decision' THEN
            r.key_decisions := o.key_decisions || jsonb_build_array(jsonb_build_object(
                'at', at, 'by', p -> 'actor' ->> 'agent_id', 'text', p -> 'text'));
        END IF;
        r.attachments := o.attachments || coalesce(p -> 'attachments', '[]'::jsonb);
        r.assistants := ARRAY(SELECT DISTINCT x FROM unnest(o.assistants || ARRAY(
            SELECT jsonb_array_elements_text(coalesce(p -> 'mentions', '[]'::jsonb)))) AS x
            WHERE x IS DISTINCT FROM o.owner_agent_id ORDER BY x);
    WHEN 'ticket.card_updated' THEN
        r.card := o.card || (p - 'ticket_id' - 'actor' - 'department_copies' - 'category'
                             - 'due_at');
        r.category := coalesce(p ->> 'category', o.category);
        r.due_at := coalesce((p ->> 'due_at')::timestamptz, o.due_at);
        r.department_copies := ARRAY(SELECT DISTINCT x FROM unnest(o.department_copies
            || ARRAY(SELECT jsonb_array_elements_text(
                coalesce(p -> 'department_copies', '[]'::jsonb)))) AS x ORDER BY x);
    WHEN 'ticket.declined' THEN
        r.declines := o.declines + 1;
        r.last_decline := jsonb_strip_nulls(jsonb_build_object('at', at,
            'by', p -> 'actor' ->> 'agent_id', 'reason', p ->> 'reason',
            'suggested_agent', p ->> 'suggested_agent'));
    WHEN 'ticket.transferred' THEN
        r.owner_agent_id := p ->> 'to_agent';
        r.team_id := coalesce(p ->> 'to_team', o.team_id);
        r.status := 'new';
        r.transfers := o.transfers || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
            'at', at, 'by', p -> 'actor' ->> 'agent_id', 'to_agent', p ->> 'to_agent',
            'to_team', p ->> 'to_team', 'reason', p ->> 'reason',
            'customer_message', p ->> 'customer_message')));
    WHEN 'ticket.escalated' THEN
        r.escalation_level := p ->> 'level';
        r.escalations := o.escalations || jsonb_build_array(jsonb_build_object('at', at,
            'by', p -> 'actor' ->> 'agent_id', 'from', p ->> 'from_level',
            'to', p ->> 'level', 'reason', p ->> 'reason'));
    WHEN 'ticket.priority_disputed' THEN
        r.priority_dispute := jsonb_build_object('at', at, 'by', p -> 'actor' ->> 'agent_id',
            'band', p ->> 'band', 'reason', p ->> 'reason');
    WHEN 'ticket.priority_overridden' THEN
        r.band := p ->> 'band';
        r.priority_override := jsonb_strip_nulls(jsonb_build_object('at', at,
            'by', p -> 'actor' ->> 'agent_id', 'band', p ->> 'band',
            'reason', p ->> 'reason', 'review_s', p -> 'dispute' -> 'review_s',
            'within_review', p -> 'dispute' -> 'within_review'));
    WHEN 'sla.breached' THEN
        r.sla_breaches := o.sla_breaches + 1;
    WHEN 'sla.escalated' THEN
        r.escalation_level := p ->> 'level';
    ELSE
        RETURN o; -- stored in ticket_events only
    END CASE;
    r.updated_at := greatest(o.updated_at, at);
    RETURN r;
END
$$;

-- The event types sb_ticket_step changes a ticket for.
CREATE FUNCTION sb_ticket_event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['contact.received', 'ticket.triaged', 'ticket.rescored', 'ticket.merged',
                 'ticket.queued', 'ticket.assigned', 'ticket.offered', 'ticket.claimed',
                 'agent.replied', 'ticket.status_changed', 'csat.received', 'ticket.reviewed',
                 'ticket.note_added', 'ticket.card_updated', 'ticket.declined',
                 'ticket.transferred', 'ticket.escalated', 'ticket.priority_disputed',
                 'ticket.priority_overridden', 'sla.breached', 'sla.escalated']
$$;

-- sb_ticket_fold(row, event ORDER BY …): the events folded over the row, in order.
CREATE FUNCTION sb_ticket_fold_step(state anyelement, base anyelement, ev jsonb)
RETURNS anyelement
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF state.id IS NULL THEN
        state := base;
    END IF;
    RETURN sb_ticket_step(state, ev);
END
$$;
CREATE AGGREGATE sb_ticket_fold(anyelement, jsonb) (
    SFUNC = sb_ticket_fold_step, STYPE = anyelement);

-- Writes ticket rows back (an array of rows of the tickets table the search path names),
-- every column but id, those that changed only. Generated from the table's columns as
-- they are now: a later migration adding a column the projection sets creates this
-- function again (re-run this block).
DO $$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(format('%I = r.%I', attname, attname), ', ' ORDER BY attnum)
      INTO cols
      FROM pg_attribute
     WHERE attrelid = 'tickets'::regclass AND attnum > 0 AND NOT attisdropped
       AND attname <> 'id';
    EXECUTE format($f$
        CREATE FUNCTION sb_tickets_write(rows anyarray) RETURNS integer
        LANGUAGE plpgsql AS $b$
        DECLARE
            n integer;
        BEGIN
            UPDATE tickets t SET %s
              FROM unnest(rows) r
             WHERE t.id = r.id AND r IS DISTINCT FROM t;
            GET DIAGNOSTICS n = ROW_COUNT;
            RETURN n;
        END
        $b$ $f$, cols);
END
$$;

-- One event's effects, alone (the fall-back path, and incidents, presence, dead letters):
-- ticket events through sb_ticket_step, so that both paths do the same.
CREATE OR REPLACE FUNCTION sb_apply_event(ev jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t  text := ev ->> 'type';
    p  jsonb := ev -> 'payload';
    tid text := nullif(ev ->> 'ticket_id', '');
    at timestamptz := (ev ->> 'occurred_at')::timestamptz;
BEGIN
    CASE t
    WHEN 'incident.detected' THEN
        INSERT INTO incidents AS i (id, domain, signature, opened_at, reported_at, member_count)
        VALUES (p ->> 'incident_id', p ->> 'domain', p ->> 'signature', at, at,
                (p ->> 'member_count')::integer)
        ON CONFLICT (id) DO UPDATE SET
            member_count = greatest(i.member_count, excluded.member_count);
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
        IF tid IS NULL OR NOT (t = ANY (sb_ticket_event_types())) THEN
            RETURN; -- stored in ticket_events only
        END IF;
        PERFORM sb_tickets_write(ARRAY(SELECT sb_ticket_step(k, ev) FROM tickets k
                                         WHERE k.id = tid FOR UPDATE));
    END CASE;
END
$$;

-- The former path, event by event (0005): an event whose values the tables refuse is
-- kept in projection_errors and the others are applied.
CREATE FUNCTION sb_project_each(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
    ev   jsonb;
    tid  text;
    n    integer := 0;
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        ev := item -> 'event';
        tid := nullif(ev ->> 'ticket_id', '');
        BEGIN
            INSERT INTO ticket_events (event_id, ticket_id, type, occurred_at, producer,
                                       trace_id, payload, topic, partition, "offset")
            VALUES ((ev ->> 'event_id')::uuid, tid, ev ->> 'type',
                    (ev ->> 'occurred_at')::timestamptz, ev ->> 'producer', ev ->> 'trace_id',
                    sb_stored_payload(ev ->> 'type', ev -> 'payload'), item ->> 'topic',
                    (item ->> 'partition')::integer, (item ->> 'offset')::bigint)
            ON CONFLICT (event_id) DO NOTHING;
            IF FOUND THEN
                IF tid IS NOT NULL
                   AND ev ->> 'type' NOT IN ('incident.detected', 'agent.presence', 'dlq.entry') THEN
                    INSERT INTO tickets (id, created_at, updated_at)
                    VALUES (tid, (ev ->> 'occurred_at')::timestamptz,
                            (ev ->> 'occurred_at')::timestamptz)
                    ON CONFLICT (id) DO NOTHING;
                END IF;
                PERFORM sb_apply_event(ev);
                n := n + 1;
            END IF;
        EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
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

-- The set-based path (steps 1-4 above). Returns the number of new events; raises the
-- error of an event the tables refuse (the caller falls back to sb_project_each).
CREATE FUNCTION sb_project_set(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n     integer;
    other jsonb;
BEGIN
    -- The staging table of this session (created once; emptied by every commit).
    IF to_regclass('pg_temp.sb_project_new') IS NULL THEN
        CREATE TEMP TABLE sb_project_new (
            seq bigint, ticket_id text, type text, at timestamptz, ev jsonb
        ) ON COMMIT DELETE ROWS;
    END IF;
    DELETE FROM sb_project_new;
    -- 1. New events: the first of each event id of the batch, not yet stored.
    WITH items AS (
        SELECT DISTINCT ON ((i.value -> 'event' ->> 'event_id')::uuid)
               i.seq, i.value AS item, i.value -> 'event' AS ev,
               (i.value -> 'event' ->> 'event_id')::uuid AS event_id
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS i (value, seq)
         ORDER BY (i.value -> 'event' ->> 'event_id')::uuid, i.seq
    ), ins AS (
        INSERT INTO ticket_events (event_id, ticket_id, type, occurred_at, producer, trace_id,
                                   payload, topic, partition, "offset")
        SELECT event_id, nullif(ev ->> 'ticket_id', ''), ev ->> 'type',
               (ev ->> 'occurred_at')::timestamptz, ev ->> 'producer', ev ->> 'trace_id',
               sb_stored_payload(ev ->> 'type', ev -> 'payload'), item ->> 'topic',
               (item ->> 'partition')::integer, (item ->> 'offset')::bigint
          FROM items
         ORDER BY seq
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    )
    INSERT INTO sb_project_new (seq, ticket_id, type, at, ev)
    SELECT i.seq, nullif(i.ev ->> 'ticket_id', ''), i.ev ->> 'type',
           (i.ev ->> 'occurred_at')::timestamptz, i.ev
      FROM items i JOIN ins USING (event_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    -- 2. Every ticket event first makes sure its ticket's row exists (0005), created at
    -- the time of the ticket's first new event.
    INSERT INTO tickets (id, created_at, updated_at)
    SELECT DISTINCT ON (ticket_id) ticket_id, at, at
      FROM sb_project_new
     WHERE ticket_id IS NOT NULL
       AND type NOT IN ('incident.detected', 'agent.presence', 'dlq.entry')
     ORDER BY ticket_id, seq
    ON CONFLICT (id) DO NOTHING;
    -- 3. Lock, fold, write back.
    PERFORM 1 FROM tickets
      WHERE id IN (SELECT ticket_id FROM sb_project_new
                    WHERE type = ANY (sb_ticket_event_types()))
      ORDER BY id FOR UPDATE;
    PERFORM sb_tickets_write(ARRAY(
        SELECT sb_ticket_fold(t, e.ev ORDER BY e.seq)
          FROM sb_project_new e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.type = ANY (sb_ticket_event_types())
         GROUP BY t.id));
    -- 4. The other effects, in order.
    FOR other IN SELECT e.ev FROM sb_project_new e
                  WHERE e.type IN ('incident.detected', 'agent.presence', 'dlq.entry')
                  ORDER BY e.seq LOOP
        PERFORM sb_apply_event(other);
    END LOOP;
    RETURN n;
END
$$;

-- One batch: [{"topic", "partition", "offset", "event": {…envelope…}}, …] in consumption
-- order. Returns the number of events that were new.
CREATE OR REPLACE FUNCTION sb_project(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        RETURN sb_project_set(batch);
    EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
        -- Some event's values are refused: the batch again, event by event, that one
        -- kept aside. Anything else (deadlock, shutdown) aborts the batch, retried.
        NULL;
    END;
    RETURN sb_project_each(batch);
END
$$;
