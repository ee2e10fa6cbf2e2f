#!/bin/sh
# Runs every fuzz target (or those named) for FUZZ_SECONDS each (default 600), one at a time on
# one job at low priority, with libFuzzer's memory limits: an input that makes a reader take
# more than 1024 MB of RSS, or ask malloc for more at once, is a finding (artifacts/<target>/).
# Prints each target's last status line (execs, peak rss) and whether it found anything.
set -eu
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-600}
targets=${*:-native damo_json perf_script load}
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t.log"
    status=0
    nice -n 19 rustup run nightly cargo fuzz run -O -j1 "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=1024 -max_len=65536 \
        -detect_leaks=0 -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    echo "$t: exit $status; $(grep -E '^#[0-9]+' "$log" | tail -1)"
    grep -E 'stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
    ls "artifacts/$t" | sed "s/^/$t finding: /"
done
