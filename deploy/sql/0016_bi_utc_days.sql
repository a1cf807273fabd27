-- The bi views of 0005 that group by day, week or hour did so in the session's time zone:
-- a BI tool whose connection sets another TimeZone (most JDBC and ODBC drivers send the
-- client's) saw other days than docs/bi.md and docs/metrics.md define (UTC). Each is
-- replaced, same columns and types, grouping in UTC whatever the session says.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE OR REPLACE VIEW bi.daily_service AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
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

CREATE OR REPLACE VIEW bi.csat_daily AS
WITH sent AS (
    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS surveys
      FROM ticket_events
     WHERE type = 'followup.due' AND payload ->> 'kind' = 'csat_survey'
     GROUP BY 1
), answered AS (
    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS answers,
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

CREATE OR REPLACE VIEW bi.sla_attainment AS
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
SELECT (c.started_at AT TIME ZONE 'UTC')::date AS day, c.kind, c.band,
       count(*) AS due,
       count(*) FILTER (WHERE b.clock_id IS NULL) AS met,
       count(*) FILTER (WHERE b.clock_id IS NULL)::numeric / nullif(count(*), 0) AS attainment
  FROM clocks c
  LEFT JOIN breaches b ON b.clock_id = c.clock_id
 WHERE b.clock_id IS NOT NULL OR c.target_at <= now()
 GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW bi.arrivals_hourly AS
SELECT date_trunc('hour', created_at, 'UTC') AS hour, channel, coalesce(domain, 'untriaged') AS domain,
       count(*) AS arrivals
  FROM tickets
 WHERE merged_into IS NULL
 GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW bi.agent_daily AS
WITH replies AS (
    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, payload -> 'actor' ->> 'agent_id' AS agent_id,
           count(*) AS replies, count(DISTINCT ticket_id) AS tickets_replied
      FROM ticket_events
     WHERE type = 'agent.replied' AND payload -> 'actor' ->> 'agent_id' <> ''
     GROUP BY 1, 2
), resolved AS (
    SELECT (resolved_at AT TIME ZONE 'UTC')::date AS day, owner_agent_id AS agent_id,
           count(*) AS resolved, avg(csat) AS csat_avg, count(csat) AS csat_answers
      FROM tickets
     WHERE resolved_at IS NOT NULL AND owner_agent_id IS NOT NULL
     GROUP BY 1, 2
)
SELECT coalesce(r.day, s.day) AS day, coalesce(r.agent_id, s.agent_id) AS agent_id,
       coalesce(r.replies, 0) AS replies, coalesce(r.tickets_replied, 0) AS tickets_replied,
       coalesce(s.resolved, 0) AS resolved, s.csat_avg, coalesce(s.csat_answers, 0) AS csat_answers
  FROM replies r FULL JOIN resolved s ON s.day = r.day AND s.agent_id = r.agent_id;

CREATE OR REPLACE VIEW bi.weekly_topics AS
SELECT date_trunc('week', created_at AT TIME ZONE 'UTC')::date AS week, coalesce(domain, 'untriaged') AS domain,
       coalesce(stage, '') AS stage, count(*) AS tickets,
       count(*) FILTER (WHERE band IN ('P1', 'P2')) AS urgent_tickets,
       avg(csat) AS csat_avg
  FROM tickets
 WHERE merged_into IS NULL
 GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW bi.dlq AS
SELECT date_trunc('hour', occurred_at, 'UTC') AS hour, stage, reason, count(*) AS entries
  FROM dlq_entries
 GROUP BY 1, 2, 3;
