-- `report times --access_rate 50% 100%` for every record of the dataset.
SELECT host, record, start_ns, end_ns
FROM pattern_spans
ORDER BY host, record, start_ns
