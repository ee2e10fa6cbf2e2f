-- The times an access pattern held, per host and record: `report times --access_rate 50% 100%`.
-- A snapshot counts when one of its regions has an access rate (whole percent of the most
-- accesses an aggregation interval can see, truncated as damo does) in [50, 100];
-- consecutive such snapshots join into one span [start_ns, end_ns).
CREATE TEMPORARY VIEW pattern_spans AS
WITH held AS (
  SELECT DISTINCT s.host, s.record, s.target, s.snapshot, s.start_ns, s.end_ns
  FROM snapshots s
  JOIN regions r ON r.host = s.host AND r.record = s.record AND r.target = s.target AND r.snapshot = s.snapshot
  WHERE FLOOR(CAST(r.nr_accesses AS DOUBLE) * 100 / (CAST(s.aggr_us AS DOUBLE) / s.sample_us)) BETWEEN 50 AND 100
),
marked AS (
  SELECT *, CASE WHEN start_ns = LAG(end_ns) OVER (PARTITION BY host, record ORDER BY target, snapshot) THEN 0 ELSE 1 END AS new_span
  FROM held
),
numbered AS (
  SELECT *, SUM(new_span) OVER (PARTITION BY host, record ORDER BY target, snapshot ROWS UNBOUNDED PRECEDING) AS span
  FROM marked
)
SELECT host, record, span, MIN(start_ns) AS start_ns, MAX(end_ns) AS end_ns
FROM numbered
GROUP BY host, record, span
