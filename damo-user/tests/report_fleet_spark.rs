//! The dataset queries of docs/fleet.md on Apache Spark (local mode, `pyspark` from PyPI on
//! Debian's OpenJDK) answer what damo-trace's reports answer, as DuckDB's do
//! (`report_fleet.rs`). Its own tier: Spark's JVM takes most of a minute to start, and the
//! setup is a 300 MB download (`cargo xtask test --skip-spark` skips it; CI runs it).

mod differential;
mod fleet;

#[test]
#[ignore = "needs Apache Spark: pyspark in .cache/spark-venv and a JDK (cargo xtask test)"]
fn spark_answers_what_the_reports_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, records) = fleet::dataset(dir.path());
    let Some(python) = fleet::python("DAMO_TRACE_SPARK_PYTHON", "spark-venv", "DAMO_TRACE_SKIP_SPARK", "Spark") else { return };
    let started = std::time::Instant::now();
    let answers = fleet::query(&python, "spark", &dataset);
    eprintln!("spark: queries answered in {:.1?}", started.elapsed());
    fleet::check_answers("spark", &answers, &records);
}
