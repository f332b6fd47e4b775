"""The end-of-day kernel on Apache Spark, partitioned by loan.

Spark does the distribution; the rule stays the one Polars kernel: each
partition's Arrow batches become a Polars frame, the same per-loan function
runs on it, and its result goes back as Arrow (`mapInArrow`). A loan is one
row of the input, so no loan is ever split between partitions and the result
cannot depend on how the book is partitioned. In tests Spark runs in local
mode; pointed at a cluster (`LENDCORE_SPARK_MASTER`) the same code scales out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
import pyarrow as pa

PartitionFn = Callable[[pl.DataFrame], pl.DataFrame]

_session: Any = None


def session() -> Any:
    """A Spark session (local mode unless LENDCORE_SPARK_MASTER names a cluster)."""
    global _session
    if _session is None:
        from pyspark.sql import SparkSession

        # Workers run this interpreter, which has lendcore and its libraries.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

        master = os.environ.get("LENDCORE_SPARK_MASTER", "local[2]")
        _session = (
            SparkSession.builder.master(master)
            .appName("lendcore-eod")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", os.environ.get("LENDCORE_SPARK_MEMORY", "2g"))
            .getOrCreate()
        )
        _session.sparkContext.setLogLevel("ERROR")
    return _session


def stop() -> None:
    global _session
    if _session is not None:
        _session.stop()
        _session = None


def run_partitioned(
    rows: pl.DataFrame, fn: PartitionFn, result_schema: pa.Schema, *, partitions: int = 8
) -> pl.DataFrame:
    """`fn` applied to `rows` partitioned by `loan_id` on Spark; the parts
    concatenated and sorted by loan, as the local run returns them."""
    spark = session()
    source = spark.createDataFrame(rows.to_arrow())
    parts = source.repartition(partitions, "loan_id")

    def each(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        frames: list[pl.DataFrame] = []
        for batch in batches:
            frame = pl.from_arrow(batch)
            if isinstance(frame, pl.DataFrame) and frame.height:
                frames.append(frame)
        if not frames:
            return
        out = fn(pl.concat(frames)).to_arrow().cast(result_schema)
        yield from out.to_batches()

    from pyspark.sql.pandas.types import from_arrow_schema

    result = parts.mapInArrow(each, from_arrow_schema(result_schema)).toArrow()
    frame = pl.from_arrow(result)
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("loan_id")
