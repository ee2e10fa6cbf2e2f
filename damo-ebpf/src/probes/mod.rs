mod damon_aggregated;
mod damos_before_apply;
mod perf_sample;
mod sched_exit;
mod sched_fork;
