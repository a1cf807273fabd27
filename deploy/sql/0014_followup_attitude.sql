-- The follow-up rate and the attitude share of negative feedback (docs/metrics.md,
-- SPEC §4 "satisfaction follow-up rate ≥ 80 %", §6 "attitude-related negative feedback
-- ≤ 5 %"), computed from the event log like every other bi view.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

-- One row per complaint callback that fell due: the SLA watcher's followup.due of kind
-- callback (a resolved complaint; an abandoned call's callback is not a complaint's and is
-- left out). A callback is completed by the first agent action on the ticket at or after
-- its due time: a reply (public or not, by a human), a note, or a status change by an
-- agent. A ticket resolved again after a reopen gets a callback of its own (another
-- due_at); a repeated followup.due of the same callback (a watcher restart) counts once.
CREATE VIEW bi.followups AS
WITH due AS (
    SELECT DISTINCT ON (ticket_id, payload ->> 'due_at')
           ticket_id, (payload ->> 'due_at')::timestamptz AS due_at, occurred_at AS fell_due_at,
           payload ->> 'agent_id' AS agent_id, payload ->> 'channel' AS channel
      FROM ticket_events
     WHERE type = 'followup.due' AND payload ->> 'kind' = 'callback'
       AND coalesce(payload ->> 'reason', 'complaint_resolved') = 'complaint_resolved'
       AND ticket_id IS NOT NULL
     ORDER BY ticket_id, payload ->> 'due_at', occurred_at, event_id
)
SELECT d.ticket_id, date_trunc('day', d.due_at AT TIME ZONE 'UTC')::date AS day, d.due_at,
       d.fell_due_at, d.agent_id, d.channel, c.completed_at, c.completed_by, c.completed_with,
       c.completed_at IS NOT NULL AS completed,
       extract(epoch FROM c.completed_at - d.due_at) AS completed_after_s
  FROM due d
  LEFT JOIN LATERAL (
      SELECT e.occurred_at AS completed_at, e.payload -> 'actor' ->> 'agent_id' AS completed_by,
             e.type AS completed_with
        FROM ticket_events e
       WHERE e.ticket_id = d.ticket_id
         AND e.occurred_at >= d.due_at
         AND e.type IN ('agent.replied', 'ticket.note_added', 'ticket.status_changed')
         AND coalesce(e.payload -> 'actor' ->> 'role', 'agent') <> 'system'
       ORDER BY e.occurred_at, e.event_id
       LIMIT 1) c ON true;
COMMENT ON VIEW bi.followups IS
    'Complaint callbacks that fell due (followup.due kind callback) and whether an agent completed them';

-- Per UTC day the callbacks fell due: follow-up rate = completed / due.
CREATE VIEW bi.followup_daily AS
SELECT day, count(*) AS callbacks_due, count(*) FILTER (WHERE completed) AS completed,
       count(*) FILTER (WHERE completed)::numeric / nullif(count(*), 0) AS followup_rate,
       avg(completed_after_s) AS completed_after_avg_s
  FROM bi.followups
 GROUP BY day;
COMMENT ON VIEW bi.followup_daily IS 'Complaint callbacks due per day, completed, follow-up rate';

-- One row per ticket that is negative feedback: a CSAT answer of 1 or 2 (the last
-- answer, as in tickets.csat), or a complaint — triage put it in the service-complaint
-- domain or the complaint journey stage, or flagged it public_negative. It is
-- attitude-related when triage fired a rule about the agent's attitude (a rule id with
-- the segment "attitude", e.g. complaint.attitude.zh in deploy/config/triage-rules.json)
-- or the agent filed it under the category "attitude".
CREATE VIEW bi.negative_feedback AS
SELECT t.id AS ticket_id, date_trunc('day', t.created_at AT TIME ZONE 'UTC')::date AS day,
       t.created_at, t.owner_agent_id, t.domain, t.stage, t.category, t.csat,
       t.csat IS NOT NULL AND t.csat <= 2 AS low_csat,
       coalesce(t.domain = 'service_complaint' OR t.stage = 'complaint', false) AS complaint,
       coalesce((t.flags ->> 'public_negative')::boolean, false) AS public_negative,
       (coalesce(t.category = 'attitude', false) OR EXISTS (
           SELECT 1
             FROM ticket_events e, jsonb_array_elements(
                      CASE WHEN jsonb_typeof(e.payload -> 'rules_fired') = 'array'
                           THEN e.payload -> 'rules_fired' ELSE '[]'::jsonb END) r
            WHERE e.ticket_id = t.id AND e.type = 'ticket.triaged'
              AND r.value ->> 'rule' ~ '(^|\.)attitude(\.|$)')) AS attitude
  FROM tickets t
 WHERE t.merged_into IS NULL
   AND ((t.csat IS NOT NULL AND t.csat <= 2) OR t.domain = 'service_complaint'
        OR t.stage = 'complaint' OR coalesce((t.flags ->> 'public_negative')::boolean, false));
COMMENT ON VIEW bi.negative_feedback IS
    'Tickets that are negative feedback (CSAT 1-2 or a complaint) and whether about attitude';

-- Per UTC day of arrival: attitude share = attitude-related / negative feedback.
CREATE VIEW bi.feedback_daily AS
SELECT day, count(*) AS negative, count(*) FILTER (WHERE low_csat) AS low_csat,
       count(*) FILTER (WHERE complaint OR public_negative) AS complaints,
       count(*) FILTER (WHERE attitude) AS attitude,
       count(*) FILTER (WHERE attitude)::numeric / nullif(count(*), 0) AS attitude_share
  FROM bi.negative_feedback
 GROUP BY day;
COMMENT ON VIEW bi.feedback_daily IS
    'Negative feedback per day of arrival and the share of it about agent attitude';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_bi') THEN
        GRANT SELECT ON bi.followups, bi.followup_daily, bi.negative_feedback,
                        bi.feedback_daily TO sb_bi;
    END IF;
END
$$;
