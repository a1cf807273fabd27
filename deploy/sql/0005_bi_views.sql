-- The documented views BI tools read (docs/bi.md), with every metric defined once
-- (docs/metrics.md, SPEC.md §7), computed from the reporter's projection: the current
-- state in tickets and the event log in ticket_events. Times are calendar time in UTC;
-- a BI tool converts to its own time zone. A read-only role, sb_bi, may read schema bi
-- and nothing else.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

-- Only data errors of an event go to projection_errors; transient errors fail the batch.
-- Events of one ticket arrive on several topics, consumed side by side: an agent's reply
-- may be applied before the contact that opened the ticket. Every ticket event first
-- makes sure the ticket row exists (created at the event's time; the contact, when it
-- comes, moves created_at back to its own time), so no effect is lost to the order.
CREATE OR REPLACE FUNCTION sb_project(batch jsonb) RETURNS integer
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
            -- A value the tables refuse is the event's own fault: keep it aside. Anything
            -- else (deadlock, lock timeout, shutdown) aborts the batch, which is retried.
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

-- Per ticket: what the metrics are made of.
CREATE VIEW bi.tickets AS
WITH replies AS (
    SELECT ticket_id,
           count(*) FILTER (WHERE coalesce((payload ->> 'public')::boolean, true)) AS replies
      FROM ticket_events
     WHERE type = 'agent.replied'
     GROUP BY ticket_id
), statuses AS (
    SELECT ticket_id, occurred_at, payload ->> 'status' AS status,
           lead(occurred_at) OVER (PARTITION BY ticket_id ORDER BY occurred_at, event_id)
               AS next_at
      FROM ticket_events
     WHERE type = 'ticket.status_changed'
), paused AS (
    SELECT ticket_id,
           sum(extract(epoch FROM coalesce(next_at, now()) - occurred_at))
               FILTER (WHERE status = 'pending_customer') AS paused_s
      FROM statuses
     GROUP BY ticket_id
), reopens AS (
    SELECT s.ticket_id, min(s.occurred_at) AS first_reopen_at
      FROM statuses s
     WHERE s.status = 'reopened'
     GROUP BY s.ticket_id
)
SELECT t.id AS ticket_id, t.customer_no, t.channel, t.status, t.band, t.score, t.domain,
       t.nature, t.stage, t.label, t.tier, t.customer_tier, t.urgency, t.impact,
       t.owner_agent_id, t.team_id, t.queue, t.incident_id, t.csat, t.contacts,
       t.created_at, t.triaged_at, t.assigned_at, t.claimed_at, t.first_response_at,
       t.first_resolved_at, t.resolved_at, t.archived_at, t.reopened_count, t.sla_breaches,
       t.escalation_level, (t.flags ->> 'legal_pr')::boolean AS legal_pr,
       (t.flags ->> 'public_negative')::boolean AS public_negative,
       coalesce(r.replies, 0) AS agent_replies,
       extract(epoch FROM t.first_response_at - t.created_at) AS first_response_s,
       extract(epoch FROM t.first_resolved_at - t.created_at) AS first_resolution_s,
       extract(epoch FROM t.resolved_at - t.created_at) AS full_resolution_s,
       coalesce(p.paused_s, 0) AS paused_s,
       -- First-contact resolution (SPEC §7): resolved after exactly one agent reply in
       -- one contact and not reopened within 7 days; NULL (excluded) when resolved with
       -- no reply, or not resolved.
       CASE
           WHEN t.first_resolved_at IS NULL OR coalesce(r.replies, 0) = 0 THEN NULL
           ELSE coalesce(r.replies, 0) = 1 AND t.contacts <= 1
                AND (o.first_reopen_at IS NULL
                     OR o.first_reopen_at > t.first_resolved_at + interval '7 days')
       END AS first_contact_resolved,
       t.merged_into
  FROM tickets t
  LEFT JOIN replies r ON r.ticket_id = t.id
  LEFT JOIN paused p ON p.ticket_id = t.id
  LEFT JOIN reopens o ON o.ticket_id = t.id
 WHERE t.merged_into IS NULL;
COMMENT ON VIEW bi.tickets IS 'One row per ticket with its milestones and derived durations';

-- Per UTC day of arrival: the daily service record.
CREATE VIEW bi.daily_service AS
SELECT date_trunc('day', created_at)::date AS day,
       count(*) AS arrivals,
       count(first_response_s) AS responded,
       avg(first_response_s) AS first_response_avg_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s) AS first_response_p50_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s) AS first_response_p90_s,
       count(first_resolved_at) AS resolved,
       avg(first_resolution_s) AS first_resolution_avg_s,
       avg(full_resolution_s) AS full_resolution_avg_s,
       avg(paused_s) FILTER (WHERE first_resolved_at IS NOT NULL) AS paused_avg_s,
       count(first_response_s)::numeric / nullif(count(*), 0) AS response_rate,
       count(first_resolved_at)::numeric / nullif(count(*), 0) AS resolution_rate,
       count(*) FILTER (WHERE first_contact_resolved) ::numeric
           / nullif(count(first_contact_resolved), 0) AS fcr_rate,
       count(*) FILTER (WHERE first_resolved_at IS NOT NULL AND agent_replies = 0)
           AS resolved_without_reply,
       avg(csat) AS csat_avg,
       count(csat) FILTER (WHERE csat >= 4)::numeric / nullif(count(csat), 0) AS csat_top2_share,
       count(csat) AS csat_answers,
       count(*) FILTER (WHERE band = 'P1') AS p1,
       count(*) FILTER (WHERE band = 'P2') AS p2,
       count(*) FILTER (WHERE band = 'P3') AS p3,
       count(*) FILTER (WHERE band = 'P4') AS p4,
       count(*) FILTER (WHERE sla_breaches > 0) AS breached_tickets,
       count(DISTINCT incident_id) AS incidents
  FROM bi.tickets
 GROUP BY 1;
COMMENT ON VIEW bi.daily_service IS 'Daily record: arrivals, response, resolution, FCR, CSAT, bands';

-- CSAT response rate needs the surveys sent (followup.due kind csat_survey).
CREATE VIEW bi.csat_daily AS
WITH sent AS (
    SELECT date_trunc('day', occurred_at)::date AS day, count(*) AS surveys
      FROM ticket_events
     WHERE type = 'followup.due' AND payload ->> 'kind' = 'csat_survey'
     GROUP BY 1
), answered AS (
    SELECT date_trunc('day', occurred_at)::date AS day, count(*) AS answers,
           avg((payload ->> 'score')::numeric) AS csat_avg,
           count(*) FILTER (WHERE (payload ->> 'score')::int >= 4)::numeric
               / nullif(count(*), 0) AS top2_share
      FROM ticket_events
     WHERE type = 'csat.received'
     GROUP BY 1
)
SELECT coalesce(s.day, a.day) AS day, coalesce(s.surveys, 0) AS surveys,
       coalesce(a.answers, 0) AS answers, a.csat_avg, a.top2_share,
       a.answers::numeric / nullif(s.surveys, 0) AS response_rate
  FROM sent s FULL JOIN answered a ON a.day = s.day;
COMMENT ON VIEW bi.csat_daily IS 'CSAT per day of answer: mean, share of 4-5, response rate';

-- SLA attainment per clock kind and band: a clock counts once its target has passed or
-- it breached; met = due and never breached. Running clocks are not counted.
CREATE VIEW bi.sla_attainment AS
WITH clocks AS (
    SELECT payload ->> 'clock_id' AS clock_id, payload ->> 'kind' AS kind,
           max(payload ->> 'band') AS band,
           max((payload ->> 'target_at')::timestamptz) AS target_at,
           min(occurred_at) AS started_at
      FROM ticket_events
     WHERE type = 'sla.started'
     GROUP BY 1, 2
), breaches AS (
    SELECT DISTINCT payload ->> 'clock_id' AS clock_id
      FROM ticket_events
     WHERE type = 'sla.breached'
)
SELECT date_trunc('day', c.started_at)::date AS day, c.kind, c.band,
       count(*) AS due,
       count(*) FILTER (WHERE b.clock_id IS NULL) AS met,
       count(*) FILTER (WHERE b.clock_id IS NULL)::numeric / nullif(count(*), 0) AS attainment
  FROM clocks c
  LEFT JOIN breaches b ON b.clock_id = c.clock_id
 WHERE b.clock_id IS NOT NULL OR c.target_at <= now()
 GROUP BY 1, 2, 3;
COMMENT ON VIEW bi.sla_attainment IS 'Clocks met / clocks due per day, kind and band';

-- Backlog now, with its age distribution.
CREATE VIEW bi.backlog AS
SELECT band, coalesce(queue, '') AS queue, count(*) AS open_tickets,
       count(*) FILTER (WHERE now() - created_at < interval '1 hour') AS age_lt_1h,
       count(*) FILTER (WHERE now() - created_at >= interval '1 hour'
                          AND now() - created_at < interval '4 hours') AS age_1h_4h,
       count(*) FILTER (WHERE now() - created_at >= interval '4 hours'
                          AND now() - created_at < interval '24 hours') AS age_4h_24h,
       count(*) FILTER (WHERE now() - created_at >= interval '24 hours') AS age_ge_24h,
       min(created_at) AS oldest_created_at
  FROM tickets
 WHERE status NOT IN ('resolved', 'awaiting_archive', 'archived') AND merged_into IS NULL
 GROUP BY 1, 2;
COMMENT ON VIEW bi.backlog IS 'Open tickets now per band and queue, by age';

-- Arrivals per hour by channel and category (staffing, hot hours).
CREATE VIEW bi.arrivals_hourly AS
SELECT date_trunc('hour', created_at) AS hour, channel, coalesce(domain, 'untriaged') AS domain,
       count(*) AS arrivals
  FROM tickets
 WHERE merged_into IS NULL
 GROUP BY 1, 2, 3;
COMMENT ON VIEW bi.arrivals_hourly IS 'Tickets opened per hour, channel and domain';

-- Per agent and UTC day: replies, tickets resolved, CSAT of their tickets.
CREATE VIEW bi.agent_daily AS
WITH replies AS (
    SELECT date_trunc('day', occurred_at)::date AS day, payload -> 'actor' ->> 'agent_id' AS agent_id,
           count(*) AS replies, count(DISTINCT ticket_id) AS tickets_replied
      FROM ticket_events
     WHERE type = 'agent.replied' AND payload -> 'actor' ->> 'agent_id' <> ''
     GROUP BY 1, 2
), resolved AS (
    SELECT date_trunc('day', resolved_at)::date AS day, owner_agent_id AS agent_id,
           count(*) AS resolved, avg(csat) AS csat_avg, count(csat) AS csat_answers
      FROM tickets
     WHERE resolved_at IS NOT NULL AND owner_agent_id IS NOT NULL
     GROUP BY 1, 2
)
SELECT coalesce(r.day, s.day) AS day, coalesce(r.agent_id, s.agent_id) AS agent_id,
       coalesce(r.replies, 0) AS replies, coalesce(r.tickets_replied, 0) AS tickets_replied,
       coalesce(s.resolved, 0) AS resolved, s.csat_avg, coalesce(s.csat_answers, 0) AS csat_answers
  FROM replies r FULL JOIN resolved s ON s.day = r.day AND s.agent_id = r.agent_id;
COMMENT ON VIEW bi.agent_daily IS 'Per agent and day: replies, resolutions, CSAT';

-- Weekly summary: hot topics and problem distribution.
CREATE VIEW bi.weekly_topics AS
SELECT date_trunc('week', created_at)::date AS week, coalesce(domain, 'untriaged') AS domain,
       coalesce(stage, '') AS stage, count(*) AS tickets,
       count(*) FILTER (WHERE band IN ('P1', 'P2')) AS urgent_tickets,
       avg(csat) AS csat_avg
  FROM tickets
 WHERE merged_into IS NULL
 GROUP BY 1, 2, 3;
COMMENT ON VIEW bi.weekly_topics IS 'Per ISO week: tickets by domain and journey stage';

CREATE VIEW bi.incidents AS
SELECT i.id AS incident_id, i.domain, i.signature, i.opened_at, i.reported_at, i.closed_at,
       i.member_count, count(t.id) AS tickets_linked
  FROM incidents i
  LEFT JOIN tickets t ON t.incident_id = i.id
 GROUP BY i.id;
COMMENT ON VIEW bi.incidents IS 'Incidents with the tickets linked to them';

CREATE VIEW bi.dlq AS
SELECT date_trunc('hour', occurred_at) AS hour, stage, reason, count(*) AS entries
  FROM dlq_entries
 GROUP BY 1, 2, 3;
COMMENT ON VIEW bi.dlq IS 'Dead letters per hour, stage and reason';

-- The read-only role of BI tools: sb_bi may read schema bi and nothing else. Creating
-- roles needs a privilege the application role usually lacks: the DBA (or the local
-- stack) creates sb_bi; when it exists, it gets its grants here.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_bi') THEN
        GRANT USAGE ON SCHEMA bi TO sb_bi;
        GRANT SELECT ON ALL TABLES IN SCHEMA bi TO sb_bi;
        ALTER DEFAULT PRIVILEGES IN SCHEMA bi GRANT SELECT ON TABLES TO sb_bi;
    ELSE
        RAISE NOTICE 'role sb_bi does not exist: create it, then GRANT USAGE ON SCHEMA bi '
                     'and SELECT ON ALL TABLES IN SCHEMA bi to it';
    END IF;
END
$$;
