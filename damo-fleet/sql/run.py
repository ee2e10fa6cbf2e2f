"""Runs the dataset queries of docs/fleet.md on DuckDB or Spark and prints the answers as JSON.

    python run.py duckdb|spark DATASET_DIR

With DAMO_FLEET_TIMING=1 the answers also say each query's seconds (`cargo xtask bench --fleet`).

Every table is a view named after it, with the `host` and `record` partition columns as
strings (no type inference: a record named "01" stays "01"). The tests compare the answers
with damo-trace's own reports on the same records.
"""

import json
import os
import pathlib
import sys
import time

TABLES = ["snapshots", "regions", "stack_samples", "stacks", "footprints", "phases"]
QUERIES = ["wss_percentiles", "pattern_times", "pattern_top_functions"]
HERE = pathlib.Path(__file__).resolve().parent


def sql(name):
    text = (HERE / f"{name}.sql").read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("--"))


def duckdb_engine(dataset):
    import duckdb

    con = duckdb.connect()
    for t in TABLES:
        glob = f"{dataset}/{t}/*/*/*.parquet"
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)")
    versions = {row[0].decode() for row in con.execute(f"SELECT value FROM parquet_kv_metadata('{dataset}/*/*/*/*.parquet') WHERE key = 'damo_trace.schema_version'").fetchall()}

    def query(text):
        cur = con.execute(text)
        cols = [d[0] for d in cur.description] if cur.description else []
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    return query, sorted(versions)


def spark_engine(dataset):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("damo-trace-fleet")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for t in TABLES:
        spark.read.parquet(f"{dataset}/{t}").createOrReplaceTempView(t)

    def query(text):
        return [row.asDict() for row in spark.sql(text).collect()]

    return query, None


def main():
    engine, dataset = sys.argv[1], sys.argv[2]
    query, versions = {"duckdb": duckdb_engine, "spark": spark_engine}[engine](dataset)
    query(sql("pattern_spans"))
    answers, seconds = {}, {}
    for name in QUERIES:
        started = time.perf_counter()
        answers[name] = query(sql(name))
        seconds[name] = time.perf_counter() - started
    answers["schema_versions"] = versions
    if os.environ.get("DAMO_FLEET_TIMING") == "1":
        answers["seconds"] = seconds
    json.dump(answers, sys.stdout, default=int)


if __name__ == "__main__":
    main()
