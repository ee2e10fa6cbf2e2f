-- `report profile --access_rate 50% 100%`: where the CPU was (the innermost frame, by
-- command, object and symbol) while the pattern held, per host and record.
SELECT ss.host, ss.record, ss.comm AS command, st.module AS object, st.function AS symbol, COUNT(*) AS samples
FROM stack_samples ss
JOIN stacks st ON st.host = ss.host AND st.record = ss.record AND st.stack = ss.stack
JOIN pattern_spans sp ON sp.host = ss.host AND sp.record = ss.record AND ss.ts_ns >= sp.start_ns AND ss.ts_ns < sp.end_ns
GROUP BY ss.host, ss.record, ss.comm, st.module, st.function
ORDER BY host, record, samples DESC, symbol, command
