-- `report wss` with damo's defaults, per host and record: the first 20 snapshots of each
-- target skipped, a snapshot's working set the bytes of its regions with any access, each
-- target's sizes sorted and summed position by position over the targets, and the value at
-- index floor(percentile * n / 100) of the n sums.
WITH wss AS (
  SELECT s.host, s.record, s.target, s.snapshot,
         COALESCE(SUM(CASE WHEN r.nr_accesses >= 1 THEN r.end_addr - r.start_addr ELSE 0 END), 0) AS wss
  FROM snapshots s
  LEFT JOIN regions r ON r.host = s.host AND r.record = s.record AND r.target = s.target AND r.snapshot = s.snapshot
  WHERE s.snapshot >= 20
  GROUP BY s.host, s.record, s.target, s.snapshot
),
ranked AS (
  SELECT host, record, wss, ROW_NUMBER() OVER (PARTITION BY host, record, target ORDER BY wss) - 1 AS i
  FROM wss
),
collapsed AS (
  SELECT host, record, i, SUM(wss) AS wss, COUNT(*) OVER (PARTITION BY host, record) AS n
  FROM ranked
  GROUP BY host, record, i
),
percentiles AS (
  SELECT 0 AS percentile UNION ALL SELECT 25 UNION ALL SELECT 50 UNION ALL SELECT 75 UNION ALL SELECT 100
)
SELECT c.host, c.record, p.percentile, c.wss
FROM collapsed c CROSS JOIN percentiles p
WHERE c.i = LEAST(CAST(FLOOR(CAST(p.percentile AS DOUBLE) * c.n / 100) AS BIGINT), c.n - 1)
ORDER BY c.host, c.record, p.percentile
