mod damon_aggregated;
mod perf_sample;
mod sched_fork;
