-- Agent occupancy and handle time per day, and a staffing recommendation per hour of
-- arrivals (docs/metrics.md, docs/bi.md; SPEC.md §6 staffing, §7 occupancy), computed
-- from the reporter's projection. Times are UTC, like every view of schema bi.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

-- Erlang C: the probability that a contact waits, with offered traffic a (Erlang) and c
-- agents, from Erlang B by its recursion B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)),
-- C = c·B / (c − a·(1 − B)) for a < c, and 1 when a >= c (the queue grows without end).
-- The same computation as services/router/erlang.c.
CREATE FUNCTION bi.erlang_c(a double precision, c integer) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    b double precision := 1;
BEGIN
    IF a < 0 OR c < 0 THEN
        RETURN NULL;
    END IF;
    IF c = 0 OR a >= c THEN
        RETURN 1;
    END IF;
    FOR k IN 1..c LOOP
        b := a * b / (k + a * b);
    END LOOP;
    RETURN c * b / (c - a * (1 - b));
END
$$;
COMMENT ON FUNCTION bi.erlang_c(double precision, integer) IS
    'Erlang C: probability of waiting with a Erlang offered to c agents';

-- Service level with c agents: the share of contacts answered within answer_s seconds,
-- 1 − C(a, c)·exp(−(c − a)·answer_s / aht_s), a = λ·AHT.
CREATE FUNCTION bi.erlang_service_level(lambda_per_s double precision, aht_s double precision,
                                        c integer, answer_s double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN aht_s <= 0 THEN NULL
                WHEN lambda_per_s * aht_s >= c THEN 0
                ELSE 1 - bi.erlang_c(lambda_per_s * aht_s, c)
                         * exp(greatest(-(c - lambda_per_s * aht_s) * answer_s / aht_s, -700))
           END
$$;
COMMENT ON FUNCTION bi.erlang_service_level(double precision, double precision, integer,
                                            double precision) IS
    'Share answered within answer_s seconds by c agents (Erlang C)';

-- The fewest agents whose service level reaches target: the smallest c above the
-- offered traffic with bi.erlang_service_level >= target. 0 with no traffic.
CREATE FUNCTION bi.erlang_agents(lambda_per_s double precision, aht_s double precision,
                                 target double precision, answer_s double precision)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    c integer;
BEGIN
    IF lambda_per_s <= 0 OR aht_s <= 0 THEN
        RETURN 0;
    END IF;
    IF target <= 0 OR target >= 1 THEN
        RETURN NULL;
    END IF;
    c := floor(lambda_per_s * aht_s)::integer + 1;
    WHILE bi.erlang_service_level(lambda_per_s, aht_s, c, answer_s) < target LOOP
        c := c + 1;
    END LOOP;
    RETURN c;
END
$$;
COMMENT ON FUNCTION bi.erlang_agents(double precision, double precision, double precision,
                                     double precision) IS
    'Fewest agents reaching the target service level (Erlang C)';

-- Per ticket: the owner's work on it, from the (first) assignment to the first
-- resolution, without the time pending on the customer. Resolved tickets only.
CREATE VIEW bi.ticket_handle AS
WITH statuses AS (
    SELECT ticket_id, occurred_at, payload ->> 'status' AS status,
           lead(occurred_at) OVER (PARTITION BY ticket_id ORDER BY occurred_at, event_id)
               AS next_at
      FROM ticket_events
     WHERE type = 'ticket.status_changed'
), pauses AS (
    SELECT ticket_id, range_agg(tstzrange(occurred_at, coalesce(next_at, 'infinity'))) AS paused
      FROM statuses
     WHERE status = 'pending_customer'
     GROUP BY ticket_id
), work AS (
    SELECT t.id AS ticket_id, t.owner_agent_id AS agent_id, t.assigned_at, t.first_resolved_at,
           tstzmultirange(tstzrange(t.assigned_at, t.first_resolved_at))
               - coalesce(p.paused, '{}'::tstzmultirange) AS worked
      FROM tickets t
      LEFT JOIN pauses p ON p.ticket_id = t.id
     WHERE t.owner_agent_id IS NOT NULL AND t.assigned_at IS NOT NULL
       AND t.first_resolved_at >= t.assigned_at AND t.merged_into IS NULL
)
SELECT w.ticket_id, w.agent_id, w.assigned_at, w.first_resolved_at,
       (w.first_resolved_at AT TIME ZONE 'UTC')::date AS day,
       coalesce((SELECT sum(extract(epoch FROM upper(r) - lower(r))) FROM unnest(w.worked) r),
                0) AS handle_s,
       w.worked
  FROM work w;
COMMENT ON VIEW bi.ticket_handle IS
    'Per resolved ticket: the owner''s handle time (assignment to resolution, pauses out)';

-- Per agent and UTC day: logged-in time (presence other than offline), the time with
-- at least one ticket in hand within it, and the handle time of the tickets resolved.
CREATE VIEW bi.agent_occupancy_daily AS
WITH presence AS (
    SELECT payload ->> 'agent_id' AS agent_id, occurred_at, payload ->> 'status' AS status,
           lead(occurred_at) OVER (PARTITION BY payload ->> 'agent_id'
                                   ORDER BY occurred_at, event_id) AS next_at
      FROM ticket_events
     WHERE type = 'agent.presence'
), logged_in AS (
    SELECT agent_id,
           range_agg(tstzrange(occurred_at, coalesce(next_at, greatest(now(), occurred_at))))
               AS staffed
      FROM presence
     WHERE status IS DISTINCT FROM 'offline'
     GROUP BY agent_id
), busy AS (
    SELECT agent_id, range_agg(r) AS busy
      FROM bi.ticket_handle, unnest(worked) r
     GROUP BY agent_id
), days AS (
    SELECT l.agent_id, d::date AS day, l.staffed,
           tstzmultirange(tstzrange(d AT TIME ZONE 'UTC', (d + interval '1 day') AT TIME ZONE 'UTC'))
               AS whole_day
      FROM logged_in l,
           unnest(l.staffed) s,
           generate_series(date_trunc('day', lower(s) AT TIME ZONE 'UTC'),
                           date_trunc('day', upper(s) AT TIME ZONE 'UTC'), interval '1 day') d
     GROUP BY l.agent_id, d, l.staffed
), spans AS (
    SELECT d.agent_id, d.day, d.staffed * d.whole_day AS staffed,
           d.staffed * d.whole_day * coalesce(b.busy, '{}'::tstzmultirange) AS busy
      FROM days d
      LEFT JOIN busy b ON b.agent_id = d.agent_id
), handled AS (
    SELECT agent_id, day, count(*) AS handled, sum(handle_s) AS handle_s
      FROM bi.ticket_handle
     GROUP BY 1, 2
), secs AS (
    SELECT agent_id, day,
           coalesce((SELECT sum(extract(epoch FROM upper(r) - lower(r))) FROM unnest(staffed) r), 0)
               AS staffed_s,
           coalesce((SELECT sum(extract(epoch FROM upper(r) - lower(r))) FROM unnest(busy) r), 0)
               AS busy_s
      FROM spans
)
SELECT coalesce(s.day, h.day) AS day, coalesce(s.agent_id, h.agent_id) AS agent_id,
       coalesce(s.staffed_s, 0) AS staffed_s, coalesce(s.busy_s, 0) AS busy_s,
       s.busy_s / nullif(s.staffed_s, 0) AS occupancy,
       coalesce(h.handled, 0) AS handled, coalesce(h.handle_s, 0) AS handle_s,
       h.handle_s / nullif(h.handled, 0) AS aht_s
  FROM secs s
  FULL JOIN handled h ON h.agent_id = s.agent_id AND h.day = s.day
 WHERE coalesce(s.staffed_s, 0) > 0 OR h.handled > 0;
COMMENT ON VIEW bi.agent_occupancy_daily IS
    'Per agent and day: logged-in time, busy time, occupancy, handled tickets, handle time';

-- Per UTC hour of arrivals: the traffic it offered and the agents it needed — Erlang C
-- for 80 % answered within 20 s, with the mean handle time of that hour's resolved
-- arrivals — plus the 10–15 % reserve for peaks (SPEC.md §6).
CREATE VIEW bi.staffing_hourly AS
WITH hours AS (
    SELECT date_trunc('hour', t.created_at AT TIME ZONE 'UTC') AS hour, count(*) AS arrivals,
           avg(h.handle_s) AS aht_s, count(h.ticket_id) AS handled
      FROM tickets t
      LEFT JOIN bi.ticket_handle h ON h.ticket_id = t.id
     WHERE t.merged_into IS NULL
     GROUP BY 1
), sized AS (
    SELECT hour, arrivals, handled, aht_s,
           arrivals * aht_s / 3600 AS traffic_erlang,
           bi.erlang_agents(arrivals / 3600.0, aht_s::double precision, 0.8, 20) AS agents_erlang
      FROM hours
)
SELECT hour AT TIME ZONE 'UTC' AS hour, arrivals, handled, aht_s, traffic_erlang,
       0.8 AS service_level_target, 20 AS answer_within_s, agents_erlang,
       bi.erlang_service_level(arrivals / 3600.0, aht_s::double precision, agents_erlang, 20)
           AS service_level,
       ceil(agents_erlang * 1.10 - 1e-9)::integer AS agents_reserve_10,
       ceil(agents_erlang * 1.15 - 1e-9)::integer AS agents_recommended
  FROM sized;
COMMENT ON VIEW bi.staffing_hourly IS
    'Per hour of arrivals: traffic, Erlang C agents for 80 % in 20 s, and with 10-15 % reserve';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_bi') THEN
        GRANT SELECT ON bi.ticket_handle, bi.agent_occupancy_daily, bi.staffing_hourly TO sb_bi;
    END IF;
END
$$;
