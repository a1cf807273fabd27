-- Scheduled reports and QA sampling (docs/reporter.md, SPEC.md §6). Both are functions of
-- the projection only, so regenerating a period gives the same content and the same
-- sample: sb-reporter calls them on schedule, `sbctl report` on demand.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

-- The period a report of a kind covers, for a day inside it: daily = that day; weekly =
-- the seven days Friday to Thursday (the summary is issued on Friday morning for the
-- week that just ended); monthly = the calendar month.
CREATE FUNCTION sb_report_period(kind text, day date, OUT period_start date, OUT period_end date)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
               WHEN 'daily' THEN day
               WHEN 'weekly' THEN day - ((extract(isodow FROM day)::int + 2) % 7)
               WHEN 'monthly' THEN date_trunc('month', day)::date
           END,
           CASE kind
               WHEN 'daily' THEN day
               WHEN 'weekly' THEN day - ((extract(isodow FROM day)::int + 2) % 7) + 6
               WHEN 'monthly' THEN (date_trunc('month', day) + interval '1 month - 1 day')::date
           END
$$;

-- The figures of a period: one summary row and the problem distribution.
CREATE FUNCTION sb_report_content(kind text, p_start date, p_end date) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH t AS (
        SELECT * FROM bi.tickets
         WHERE created_at >= p_start AND created_at < p_end + 1
    ), summary AS (
        SELECT count(*) AS arrivals,
               count(first_response_s) AS responded,
               round(avg(first_response_s)::numeric, 1) AS first_response_avg_s,
               count(first_resolved_at) AS resolved,
               round(avg(first_resolution_s)::numeric, 1) AS first_resolution_avg_s,
               round(count(*) FILTER (WHERE first_contact_resolved)::numeric
                     / nullif(count(first_contact_resolved), 0), 4) AS fcr_rate,
               round(avg(csat), 2) AS csat_avg,
               count(csat) AS csat_answers,
               count(*) FILTER (WHERE sla_breaches > 0) AS breached_tickets,
               count(DISTINCT incident_id) AS incidents,
               count(*) FILTER (WHERE legal_pr) AS legal_pr
          FROM t
    ), topics AS (
        SELECT coalesce(domain, 'untriaged') AS domain, count(*) AS tickets,
               count(*) FILTER (WHERE band IN ('P1', 'P2')) AS urgent,
               round(avg(csat), 2) AS csat_avg
          FROM t GROUP BY 1
    ), bands AS (
        SELECT coalesce(band, 'none') AS band, count(*) AS tickets FROM t GROUP BY 1
    )
    SELECT jsonb_build_object(
        'kind', kind, 'period_start', p_start, 'period_end', p_end,
        'summary', (SELECT to_jsonb(summary) FROM summary),
        'topics', coalesce((SELECT jsonb_agg(to_jsonb(topics) ORDER BY tickets DESC, domain)
                              FROM topics), '[]'),
        'bands', coalesce((SELECT jsonb_object_agg(band, tickets) FROM bands), '{}'))
$$;

-- Generates (or regenerates) the report of a kind for the period holding day; returns
-- its id. The CSV is one line per figure; the HTML a small self-contained page.
CREATE FUNCTION sb_report_generate(p_kind text, day date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    c jsonb;
    csv text;
    html text;
    rid bigint;
BEGIN
    SELECT * INTO p FROM sb_report_period(p_kind, day);
    IF p.period_start IS NULL THEN
        RAISE EXCEPTION 'unknown report kind %', p_kind;
    END IF;
    c := sb_report_content(p_kind, p.period_start, p.period_end);
    SELECT 'section,name,value' || E'\n' ||
           string_agg(format('%s,%s,%s', s.section, s.name, coalesce(s.value, '')), E'\n'
                      ORDER BY s.section, s.ord, s.name)
      INTO csv
      FROM (SELECT 'summary' AS section, 0 AS ord, key AS name, value #>> '{}' AS value
              FROM jsonb_each(c -> 'summary')
            UNION ALL
            SELECT 'band', 0, key, value #>> '{}' FROM jsonb_each(c -> 'bands')
            UNION ALL
            SELECT 'topic', 0, e ->> 'domain', e ->> 'tickets'
              FROM jsonb_array_elements(c -> 'topics') e) s;
    SELECT format('<!doctype html><html><head><meta charset="utf-8"><title>%s report %s</title>'
                  '</head><body><h1>%s report, %s to %s</h1><table>%s</table>'
                  '<h2>Problem distribution</h2><table><tr><th>domain</th><th>tickets</th>'
                  '<th>urgent</th><th>CSAT</th></tr>%s</table></body></html>',
                  p_kind, p.period_start, initcap(p_kind), p.period_start, p.period_end,
                  (SELECT string_agg(format('<tr><th>%s</th><td>%s</td></tr>', key,
                                            coalesce(value #>> '{}', '')), '' ORDER BY key)
                     FROM jsonb_each(c -> 'summary')),
                  coalesce((SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td>'
                                                     '<td>%s</td></tr>', e ->> 'domain',
                                                     e ->> 'tickets', e ->> 'urgent',
                                                     coalesce(e ->> 'csat_avg', '')), '')
                              FROM jsonb_array_elements(c -> 'topics') e), ''))
      INTO html;
    INSERT INTO reports (kind, period_start, period_end, content, csv, html)
    VALUES (p_kind, p.period_start, p.period_end, c, csv, html)
    ON CONFLICT (kind, period_start) DO UPDATE SET
        period_end = excluded.period_end, content = excluded.content, csv = excluded.csv,
        html = excluded.html, generated_at = now()
    RETURNING id INTO rid;
    RETURN rid;
END
$$;

-- QA sampling (SPEC §6): share (default 20 %) of the day's conversations — tickets with
-- a public agent reply that day — drawn by a seeded hash, so the same day and seed give
-- the same sample; then every agent who had conversations in the week (Monday to that
-- day) and no sample yet that week gets one. Returns the number of rows added.
CREATE FUNCTION sb_qa_sample(day date, share numeric DEFAULT 0.2, seed bigint DEFAULT 1)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    added integer := 0;
    n integer;
BEGIN
    WITH convs AS (
        SELECT DISTINCT e.ticket_id, t.owner_agent_id AS agent_id
          FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.type = 'agent.replied' AND coalesce((e.payload ->> 'public')::boolean, true)
           AND e.occurred_at >= day AND e.occurred_at < day + 1
    ), ranked AS (
        SELECT *, row_number() OVER (ORDER BY md5(seed::text || ':' || ticket_id)) AS r,
               count(*) OVER () AS total
          FROM convs
    )
    INSERT INTO qa_samples (ticket_id, sample_day, agent_id, seed)
    SELECT ticket_id, day, agent_id, seed FROM ranked WHERE r <= ceil(total * share)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    added := added + n;

    WITH week AS (
        SELECT DISTINCT ON (t.owner_agent_id) e.ticket_id, t.owner_agent_id AS agent_id
          FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.type = 'agent.replied' AND coalesce((e.payload ->> 'public')::boolean, true)
           AND e.occurred_at >= date_trunc('week', day) AND e.occurred_at < day + 1
           AND t.owner_agent_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM qa_samples q
                            WHERE q.agent_id = t.owner_agent_id
                              AND q.sample_day >= date_trunc('week', day)::date
                              AND q.sample_day <= day)
         ORDER BY t.owner_agent_id, md5(seed::text || ':' || e.ticket_id)
    )
    INSERT INTO qa_samples (ticket_id, sample_day, agent_id, seed)
    SELECT ticket_id, day, agent_id, seed FROM week
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN added + n;
END
$$;

CREATE VIEW bi.qa_samples AS
SELECT q.sample_day, q.ticket_id, q.agent_id, q.reviewed_by, q.score, q.notes, t.domain,
       t.band, t.csat
  FROM qa_samples q LEFT JOIN tickets t ON t.id = q.ticket_id;
COMMENT ON VIEW bi.qa_samples IS 'Conversations drawn for QA review, with their review';

CREATE VIEW bi.reports AS
SELECT id, kind, period_start, period_end, generated_at, content FROM reports;
COMMENT ON VIEW bi.reports IS 'Generated daily, weekly and monthly reports (content as JSON)';

-- The schedule, run by sb-reporter every minute with the center's local time: the daily
-- record and the QA sample of yesterday, the weekly summary on Friday from report_hour
-- (the week that ended Thursday), the monthly summary on the 1st from report_hour. Each
-- is made once; returns how many reports were generated now.
CREATE FUNCTION sb_reports_run(local_now timestamp, report_hour integer DEFAULT 8,
                               qa_share numeric DEFAULT 0.2, qa_seed bigint DEFAULT 1)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    today date := local_now::date;
    made integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM reports WHERE kind = 'daily' AND period_start = today - 1) THEN
        PERFORM sb_report_generate('daily', today - 1);
        PERFORM sb_qa_sample(today - 1, qa_share, qa_seed);
        made := made + 1;
    END IF;
    IF extract(hour FROM local_now) >= report_hour THEN
        IF extract(isodow FROM today) = 5 AND NOT EXISTS (
               SELECT 1 FROM reports WHERE kind = 'weekly' AND period_start = today - 7) THEN
            PERFORM sb_report_generate('weekly', today - 1);
            made := made + 1;
        END IF;
        IF extract(day FROM today) = 1 AND NOT EXISTS (
               SELECT 1 FROM reports WHERE kind = 'monthly'
                  AND period_start = date_trunc('month', today - 1)::date) THEN
            PERFORM sb_report_generate('monthly', today - 1);
            made := made + 1;
        END IF;
    END IF;
    RETURN made;
END
$$;
