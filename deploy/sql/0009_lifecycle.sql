-- The ticket life cycle (docs/lifecycle.md). ticket_workflow is sb-ingest's record of
-- each ticket's life-cycle state, read and written under its row lock by every agent
-- action, so two concurrent actions on one ticket cannot both pass the transition check.
-- The projection learns the collaboration fields (task card, progress, key decisions,
-- assistants, review, declines, transfers, escalations, priority disputes, archive
-- fields) so the read API shows them with the ticket; sb_apply_event() is replaced with
-- the same cases as 0004 plus these.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE TABLE ticket_workflow (
    ticket_id        text PRIMARY KEY,
    state            text NOT NULL CHECK (state IN ('new', 'offered', 'claimed', 'in_progress',
                         'pending_customer', 'resolved', 'in_review', 'sent_back',
                         'awaiting_archive', 'archived', 'reopened')),
    owner_agent_id   text,
    csat             smallint CHECK (csat BETWEEN 1 AND 5),
    category         text,
    handling_minutes integer CHECK (handling_minutes > 0),
    escalation_level text CHECK (escalation_level IN ('lead', 'supervisor')),
    resolved_at      timestamptz,
    archived_at      timestamptz,
    disputed_at      timestamptz,
    version          bigint NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ticket_workflow IS
    'Life-cycle state of each ticket, written by sb-ingest under the row lock (the authority for transitions)';

ALTER TABLE tickets
    ADD COLUMN card jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN category text,
    ADD COLUMN due_at timestamptz,
    ADD COLUMN department_copies text[] NOT NULL DEFAULT '{}',
    ADD COLUMN progress_percent smallint CHECK (progress_percent BETWEEN 0 AND 100),
    ADD COLUMN milestone text,
    ADD COLUMN progress jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN key_decisions jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN attachments jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN review_outcome text,
    ADD COLUMN reviewed_by text,
    ADD COLUMN sent_back_count integer NOT NULL DEFAULT 0,
    ADD COLUMN sent_back_reason text,
    ADD COLUMN declines integer NOT NULL DEFAULT 0,
    ADD COLUMN last_decline jsonb,
    ADD COLUMN transfers jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN escalations jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN priority_dispute jsonb,
    ADD COLUMN priority_override jsonb,
    ADD COLUMN handling_minutes integer,
    ADD COLUMN closing_note text,
    ADD COLUMN csat_comment text;

CREATE OR REPLACE FUNCTION sb_apply_event(ev jsonb) RETURNS void
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
            -- the row may come first from another topic's event (0005): fill it in
            customer_no = coalesce(k.customer_no, excluded.customer_no),
            channel = coalesce(k.channel, excluded.channel),
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
               status = CASE WHEN status IN ('new', 'queued', 'offered', 'assigned')
                        THEN 'claimed' ELSE status END,
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
               category = coalesce(p ->> 'category', category),
               handling_minutes = coalesce((p ->> 'handling_minutes')::integer, handling_minutes),
               closing_note = coalesce(p ->> 'note', closing_note),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'csat.received' THEN
        UPDATE tickets SET csat = (p ->> 'score')::smallint,
               csat_comment = coalesce(p ->> 'comment', csat_comment),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.reviewed' THEN
        UPDATE tickets SET review_outcome = p ->> 'outcome',
               reviewed_by = p -> 'actor' ->> 'agent_id',
               status = CASE p ->> 'outcome' WHEN 'approved' THEN 'awaiting_archive'
                        ELSE 'sent_back' END,
               sent_back_count = sent_back_count
                   + CASE WHEN p ->> 'outcome' = 'sent_back' THEN 1 ELSE 0 END,
               sent_back_reason = CASE WHEN p ->> 'outcome' = 'sent_back' THEN p ->> 'reason'
                   ELSE sent_back_reason END,
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.note_added' THEN
        UPDATE tickets SET
               progress_percent = coalesce((p ->> 'percent')::smallint, progress_percent),
               milestone = coalesce(p ->> 'milestone', milestone),
               progress = progress || CASE WHEN p ? 'percent' OR p ->> 'kind' = 'progress'
                   THEN jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                       'at', at, 'by', p -> 'actor' ->> 'agent_id', 'percent', p -> 'percent',
                       'milestone', p -> 'milestone', 'text', p -> 'text')))
                   ELSE '[]'::jsonb END,
               key_decisions = key_decisions || CASE WHEN p ->> 'kind' = 'key_decision'
                   THEN jsonb_build_array(jsonb_build_object('at', at,
                       'by', p -> 'actor' ->> 'agent_id', 'text', p -> 'text'))
                   ELSE '[]'::jsonb END,
               attachments = attachments || coalesce(p -> 'attachments', '[]'::jsonb),
               assistants = ARRAY(SELECT DISTINCT x FROM unnest(assistants || ARRAY(
                   SELECT jsonb_array_elements_text(coalesce(p -> 'mentions', '[]'::jsonb))))
                   AS x WHERE x IS DISTINCT FROM owner_agent_id ORDER BY x),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.card_updated' THEN
        UPDATE tickets SET
               card = card || (p - 'ticket_id' - 'actor' - 'department_copies' - 'category'
                               - 'due_at'),
               category = coalesce(p ->> 'category', category),
               due_at = coalesce((p ->> 'due_at')::timestamptz, due_at),
               department_copies = ARRAY(SELECT DISTINCT x FROM unnest(department_copies
                   || ARRAY(SELECT jsonb_array_elements_text(
                       coalesce(p -> 'department_copies', '[]'::jsonb)))) AS x ORDER BY x),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.declined' THEN
        UPDATE tickets SET declines = declines + 1,
               last_decline = jsonb_strip_nulls(jsonb_build_object('at', at,
                   'by', p -> 'actor' ->> 'agent_id', 'reason', p ->> 'reason',
                   'suggested_agent', p ->> 'suggested_agent')),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.transferred' THEN
        UPDATE tickets SET owner_agent_id = p ->> 'to_agent',
               team_id = coalesce(p ->> 'to_team', team_id),
               status = 'new',
               transfers = transfers || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                   'at', at, 'by', p -> 'actor' ->> 'agent_id', 'to_agent', p ->> 'to_agent',
                   'to_team', p ->> 'to_team', 'reason', p ->> 'reason',
                   'customer_message', p ->> 'customer_message'))),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.escalated' THEN
        UPDATE tickets SET escalation_level = p ->> 'level',
               escalations = escalations || jsonb_build_array(jsonb_build_object('at', at,
                   'by', p -> 'actor' ->> 'agent_id', 'from', p ->> 'from_level',
                   'to', p ->> 'level', 'reason', p ->> 'reason')),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.priority_disputed' THEN
        UPDATE tickets SET priority_dispute = jsonb_build_object('at', at,
                   'by', p -> 'actor' ->> 'agent_id', 'band', p ->> 'band',
                   'reason', p ->> 'reason'),
               updated_at = greatest(updated_at, at)
         WHERE tickets.id = tid;
    WHEN 'ticket.priority_overridden' THEN
        UPDATE tickets SET band = p ->> 'band',
               priority_override = jsonb_strip_nulls(jsonb_build_object('at', at,
                   'by', p -> 'actor' ->> 'agent_id', 'band', p ->> 'band',
                   'reason', p ->> 'reason', 'review_s', p -> 'dispute' -> 'review_s',
                   'within_review', p -> 'dispute' -> 'within_review')),
               updated_at = greatest(updated_at, at)
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

