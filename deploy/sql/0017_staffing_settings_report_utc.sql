-- Two corrections to the reporter's SQL (docs/metrics.md, docs/bi.md).
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

-- 1. The staffing recommendation took its service level (80 % within 20 s) and its
-- reserve (10–15 %) as literals in the view. They are configuration of sb-reporter
-- (staffing.*, docs/configuration.md), which publishes them here at start and on every
-- report tick; the view reads them. Until a reporter has published them, the sizing
-- columns are NULL rather than sized for a target nobody configured.
CREATE TABLE staffing_settings (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    service_level double precision NOT NULL CHECK (service_level > 0 AND service_level < 1),
    answer_within_s double precision NOT NULL CHECK (answer_within_s >= 0),
    reserve_low double precision NOT NULL CHECK (reserve_low >= 0),
    reserve_high double precision NOT NULL CHECK (reserve_high >= reserve_low),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE staffing_settings IS
    'The staffing target and reserve in force, as sb-reporter''s staffing.* configuration says';

DROP VIEW bi.staffing_hourly;
CREATE VIEW bi.staffing_hourly AS
WITH hours AS (
    SELECT date_trunc('hour', t.created_at AT TIME ZONE 'UTC') AS hour, count(*) AS arrivals,
           avg(h.handle_s) AS aht_s, count(h.ticket_id) AS handled
      FROM tickets t
      LEFT JOIN bi.ticket_handle h ON h.ticket_id = t.id
     WHERE t.merged_into IS NULL
     GROUP BY 1
), sized AS (
    SELECT h.hour, h.arrivals, h.handled, h.aht_s, h.arrivals * h.aht_s / 3600 AS traffic_erlang,
           s.service_level, s.answer_within_s, s.reserve_low, s.reserve_high,
           bi.erlang_agents(h.arrivals / 3600.0, h.aht_s::double precision, s.service_level,
                            s.answer_within_s) AS agents_erlang
      FROM hours h
      LEFT JOIN staffing_settings s ON true
)
SELECT hour AT TIME ZONE 'UTC' AS hour, arrivals, handled, aht_s, traffic_erlang,
       service_level AS service_level_target, answer_within_s, agents_erlang,
       bi.erlang_service_level(arrivals / 3600.0, aht_s::double precision, agents_erlang,
                               answer_within_s) AS service_level,
       reserve_low, reserve_high,
       ceil(agents_erlang * (1 + reserve_low) - 1e-9)::integer AS agents_reserve_low,
       ceil(agents_erlang * (1 + reserve_high) - 1e-9)::integer AS agents_recommended
  FROM sized;
COMMENT ON VIEW bi.staffing_hourly IS
    'Per hour of arrivals: traffic, Erlang C agents for the configured service level, '
    'and with the configured reserve for peaks';

CREATE VIEW bi.staffing_settings AS
SELECT service_level, answer_within_s, reserve_low, reserve_high, updated_at
  FROM staffing_settings;
COMMENT ON VIEW bi.staffing_settings IS
    'The staffing target (share answered within answer_within_s) and the reserve in force';

-- 2. The report and QA-sample functions compared timestamps with dates in the session's
-- time zone, so `sbctl report` or a reporter whose session is not in UTC covered other
-- days than the bi views (0016). They run in UTC whatever the session says.
ALTER FUNCTION sb_report_content(text, date, date) SET TimeZone TO 'UTC';
ALTER FUNCTION sb_qa_sample(date, numeric, bigint) SET TimeZone TO 'UTC';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_bi') THEN
        GRANT SELECT ON bi.staffing_hourly, bi.staffing_settings TO sb_bi;
    END IF;
END
$$;
