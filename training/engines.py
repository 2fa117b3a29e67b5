"""The SQL engines the event store runs on: DuckDB (embedded, out of core: the default) and Spark (local
mode here, a cluster with --master). Both read CSV, JSON Lines and Parquet (text optionally gzipped) into
`raw_events`, every column as text, and run training/event_store.py's statements unchanged.

When to use which: DuckDB up to what one machine's disk holds (it spills to its work directory and keeps
to its memory limit); Spark when the log lives on a cluster's storage or outgrows one machine."""

from __future__ import annotations

import contextlib
import gzip
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from models.event_format import EVENT_COLUMNS
from training.readers import DataError, ReadReport

REQUIRED = ("timestamp", "user_id", "item_id", "event_type")
ENGINES = ("duckdb", "spark")
ROWS_PER_PARTITION = 1_000_000  # events per local Spark shuffle partition (local_partitions)


class Engine(Protocol):
    name: str

    def read(self, files: list[Path], report: ReadReport) -> None:
        """`raw_events`: _row (position in the input), _raw (the record as read), EVENT_COLUMNS as text."""

    def register(self, name: str, frame: pd.DataFrame) -> None: ...

    def table(self, name: str, sql: str) -> None: ...

    def frame(self, sql: str) -> pd.DataFrame: ...

    def drop(self, name: str) -> None: ...

    def iso_seconds(self, text: str) -> str:
        """SQL: Unix seconds of an ISO 8601 text, NULL when it is not one."""

    def example(self, row: int, raw: str) -> str: ...

    def close(self) -> None: ...


def _format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in ((".csv", "csv"), (".jsonl", "json"), (".ndjson", "json"), (".json", "json")):
        if name.endswith(suffix):
            return kind
    if name.endswith(".parquet") and not path.name.lower().endswith(".gz"):
        return "parquet"
    raise DataError(f"{path}: unknown format (use .csv, .jsonl or .parquet, optionally .gz for text)")


def _check_columns(path: Path, columns: Iterable[str]) -> None:
    have = list(columns)
    missing = [c for c in REQUIRED if c not in have]
    if missing:
        raise DataError(f"{path}: missing required column(s) {', '.join(missing)}; has {', '.join(have)}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDB:
    """DuckDB in a database file under a temporary work directory, so that tables larger than
    `memory_gb` spill to disk instead of failing."""

    name = "duckdb"

    def __init__(self, memory_gb: float = 4.0, threads: int = 2, work_dir: Path | None = None) -> None:
        import duckdb

        self._error = duckdb.Error
        self._work = tempfile.TemporaryDirectory(prefix="shifu-events-", dir=work_dir)
        work = Path(self._work.name)
        self._memory_limit = f"{memory_gb}GB"
        self.con = duckdb.connect(
            str(work / "events.duckdb"),
            config={
                "memory_limit": self._memory_limit,
                "temp_directory": str(work / "spill"),
                "threads": threads,
                "preserve_insertion_order": False,
            },
        )
        self.con.execute("SET TimeZone = 'UTC'")
        self._views: dict[str, pd.DataFrame] = {}

    def read(self, files: list[Path], report: ReadReport) -> None:
        self.con.execute(
            "CREATE OR REPLACE TABLE raw_events (_row BIGINT, _raw VARCHAR, "
            + ", ".join(f"{c} VARCHAR" for c in EVENT_COLUMNS)
            + ")"
        )
        offset = 0
        for path in files:
            try:
                offset += self._read_one(path, offset, report)
            except self._error as error:
                raise DataError(f"{path}: {str(error).splitlines()[0]}") from error
        report.rows_read += offset

    def _read_one(self, path: Path, offset: int, report: ReadReport) -> int:
        kind = _format(path)
        if kind == "json":
            return self._read_json(path, offset, report)
        source = (
            f"read_csv({_sql_text(path)}, header = true, all_varchar = true, delim = ',', quote = '\"', "
            "escape = '\"', store_rejects = true)"
            if kind == "csv"
            else f"read_parquet({_sql_text(path)})"
        )
        columns = [row[0] for row in self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        _check_columns(path, columns)
        fields = ", ".join(
            f"trim(CAST({_quote(c)} AS VARCHAR))" if c in columns else "''" for c in EVENT_COLUMNS
        )
        raw = (
            "concat_ws(',', "
            + ", ".join(f"coalesce(CAST({_quote(c)} AS VARCHAR), '')" for c in columns)
            + ")"
        )
        self.con.execute(
            f"INSERT INTO raw_events SELECT {offset} + row_number() OVER () - 1, {raw}, {fields} "
            f"FROM {source}"
        )
        if kind == "csv":
            self._count_rejects(report)
        return self._rows() - offset

    def _rows(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM raw_events").fetchone()[0])  # type: ignore[index]

    def _count_rejects(self, report: ReadReport) -> None:
        bad = self.con.execute(
            "SELECT any_value(csv_line) FROM reject_errors GROUP BY scan_id, file_id, line ORDER BY line"
        ).fetchall()
        self.con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        report.rows_read += len(bad)
        report.drop("malformed_line", [f"wrong number of fields: {str(line)[:120]}" for (line,) in bad])

    def _read_json(self, path: Path, offset: int, report: ReadReport) -> int:
        lines = (
            f"read_csv({_sql_text(path)}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\\x01', "
            "quote = '', escape = '', auto_detect = false)"
        )
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE json_lines AS
                SELECT row_number() OVER () AS number, line, try_cast(line AS JSON) AS j FROM {lines}
                WHERE trim(coalesce(line, '')) <> ''"""
        )
        bad = self.con.execute(
            """SELECT number, line FROM json_lines WHERE j IS NULL OR json_type(j) <> 'OBJECT'
               ORDER BY number"""
        ).fetchall()
        report.rows_read += len(bad)
        report.drop("malformed_line", [f"line {n}: not a JSON object: {str(line)[:120]}" for n, line in bad])
        keys = {
            str(k)
            for (k,) in self.con.execute(
                "SELECT DISTINCT unnest(json_keys(j)) FROM json_lines WHERE json_type(j) = 'OBJECT'"
            ).fetchall()
        }
        if keys:  # a file of nothing but malformed lines has no columns to check
            _check_columns(path, sorted(keys))
        fields = ", ".join(f"coalesce(j->>'$.{c}', '')" for c in EVENT_COLUMNS)
        self.con.execute(
            f"""INSERT INTO raw_events
                SELECT {offset} + row_number() OVER (ORDER BY number) - 1, line, {fields}
                FROM json_lines WHERE json_type(j) = 'OBJECT'"""
        )
        self.con.execute("DROP TABLE json_lines")
        return self._rows() - offset

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.drop(name)
        self._views[name] = frame
        self.con.register(name, frame)

    def table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

    def frame(self, sql: str) -> pd.DataFrame:
        result = self.con.execute(sql).df()
        self._release_cache()
        return result

    def _release_cache(self) -> None:
        """Give back the pages DuckDB keeps of its tables: they stay cached up to the memory limit after
        a query, and the models fitted on a result need that memory (measured at 50M events: the cache
        held about 4 GB through the fittings). A lower limit makes DuckDB evict them; the next query
        reads the database file again (from the OS page cache, usually)."""
        self.con.execute("SET memory_limit = '64MB'")
        self.con.execute(f"SET memory_limit = '{self._memory_limit}'")

    def drop(self, name: str) -> None:
        if self._views.pop(name, None) is not None:
            self.con.unregister(name)
        else:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def iso_seconds(self, text: str) -> str:
        return f"epoch(try_cast({text} AS TIMESTAMPTZ))"

    def example(self, row: int, raw: str) -> str:
        return f"record {row + 1}: {raw[:200]}"

    def close(self) -> None:
        self.con.close()
        self._work.cleanup()


class Spark:
    """A Spark session: `local[N]` here, a cluster's master URL there. Paths are passed to Spark as they
    are, so a cluster reads its own storage (any Hadoop-style URI)."""

    name = "spark"

    def __init__(self, master: str = "local[2]", memory_gb: float = 4.0) -> None:
        from pyspark.sql import SparkSession

        # PySpark 4.3 warns on pandas 3 at every conversion; the conversions used here are checked by
        # the parity test (tests/training/test_engines.py).
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )

        local = master.startswith("local")
        self.spark = (
            SparkSession.builder.master(master)
            .appName("shifu-training")
            .config("spark.driver.memory", f"{int(memory_gb * 1024)}m")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "false")
            # Local mode (tests, one machine): no whole-stage code generation or adaptive planning, whose
            # per-query compile and planning time outweighed the work on the demo log (its aggregation
            # took 23 s with them, 13 s without); shuffle partitions are sized to the log once it is read.
            .config("spark.sql.shuffle.partitions", "1" if local else "200")
            .config("spark.sql.codegen.wholeStage", "false" if local else "true")
            .config("spark.sql.adaptive.enabled", "false" if local else "true")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        self._local = local
        self._cached: dict[str, Any] = {}

    def read(self, files: list[Path], report: ReadReport) -> None:
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        try:
            self._read(files, report)
        except (PySparkException, Py4JJavaError) as error:
            # Spark reads the files together: its first line names the file where it can.
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            where = str(files[0]) if len(files) == 1 else f"{files[0]} (one of {len(files)} files)"
            raise DataError(f"{where}: {first.strip()[:400]}") from error

    def _read(self, files: list[Path], report: ReadReport) -> None:
        from pyspark.sql import functions as F

        parts = []
        for kind in ("csv", "json", "parquet"):
            group = [str(p) for p in files if _format(p) == kind]
            if group:
                parts.append(getattr(self, f"_read_{kind}")(files, group, report))
        raw = parts[0]
        for part in parts[1:]:
            raw = raw.unionByName(part)
        raw = raw.withColumn("_row", F.monotonically_increasing_id())
        self._cache("raw_events", raw)
        report.rows_read += int(raw.count())
        if self._local:
            self.spark.conf.set("spark.sql.shuffle.partitions", str(local_partitions(report.rows_read)))

    def _read_csv(self, files: list[Path], group: list[str], report: ReadReport) -> Any:
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType, StructField, StructType

        header = _csv_header(Path(group[0]))
        _check_columns(Path(group[0]), header)
        schema = StructType([StructField(c, StringType()) for c in [*header, "_corrupt"]])
        frame = self.spark.read.csv(
            group, header=True, schema=schema, mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt",
            escape='"',
        ).cache()  # fmt: skip
        bad = frame.filter(F.col("_corrupt").isNotNull())
        count = int(bad.count())
        report.rows_read += count
        shown = [f"wrong number of fields: {r['_corrupt'][:120]}" for r in bad.limit(3).collect()]
        report.drop("malformed_line", shown, count)
        good = frame.filter(F.col("_corrupt").isNull())
        raw = F.concat_ws(",", *[F.coalesce(F.col(c), F.lit("")) for c in header])
        return good.select(
            raw.alias("_raw"),
            *[(F.trim(F.col(c)) if c in header else F.lit("")).alias(c) for c in EVENT_COLUMNS],
        )

    def _read_json(self, files: list[Path], group: list[str], report: ReadReport) -> Any:
        from pyspark.sql import functions as F

        lines = self.spark.read.text(group).filter(F.trim(F.col("value")) != "")
        is_object = F.expr("substr(ltrim(value), 1, 1) = '{' AND get_json_object(value, '$') IS NOT NULL")
        lines = lines.withColumn("ok", is_object).cache()
        bad = lines.filter(~F.col("ok"))
        count = int(bad.count())
        report.rows_read += count
        shown = [f"not a JSON object: {r['value'][:120]}" for r in bad.limit(3).collect()]
        report.drop("malformed_line", shown, count)
        good = lines.filter(F.col("ok"))
        return good.select(
            F.col("value").alias("_raw"),
            *[F.coalesce(F.get_json_object("value", f"$.{c}"), F.lit("")).alias(c) for c in EVENT_COLUMNS],
        )

    def _read_parquet(self, files: list[Path], group: list[str], report: ReadReport) -> Any:
        from pyspark.sql import functions as F

        frame = self.spark.read.option("mergeSchema", "true").parquet(*group)
        _check_columns(Path(group[0]), frame.columns)
        raw = F.concat_ws(",", *[F.coalesce(F.col(c).cast("string"), F.lit("")) for c in frame.columns])
        return frame.select(
            raw.alias("_raw"),
            *[(F.col(c).cast("string") if c in frame.columns else F.lit("")).alias(c) for c in EVENT_COLUMNS],
        )

    def _cache(self, name: str, frame: Any) -> None:
        from pyspark import StorageLevel

        self.drop(name)
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        frame.createOrReplaceTempView(name)
        self._cached[name] = frame

    def register(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

        def kind(series: pd.Series) -> Any:
            if pd.api.types.is_integer_dtype(series):
                return LongType()
            return DoubleType() if pd.api.types.is_float_dtype(series) else StringType()

        schema = StructType([StructField(str(c), kind(frame[c])) for c in frame.columns])
        rows = [
            tuple(v.item() if isinstance(v, np.generic) else v for v in row)
            for row in frame.itertuples(index=False)
        ]
        self._cache(name, self.spark.createDataFrame(rows, schema))

    def table(self, name: str, sql: str) -> None:
        self._cache(name, self.spark.sql(sql))

    def frame(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toPandas()

    def drop(self, name: str) -> None:
        cached = self._cached.pop(name, None)
        if cached is not None:
            cached.unpersist()
            self.spark.catalog.dropTempView(name)

    def iso_seconds(self, text: str) -> str:
        return f"unix_micros(try_to_timestamp({text})) / 1e6"

    def example(self, row: int, raw: str) -> str:
        return raw[:200]  # Spark's row ids are not positions in the input

    def als(
        self, pairs_sql: str, n_users: int, n_items: int, params: Any, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(user factors, item factors) of MLlib's ALS with implicit preferences on `pairs_sql`
        (user_code, item_code, confidence). A user or item without a weighted pair keeps zero factors."""
        from pyspark.ml.recommendation import ALS

        pairs = self.spark.sql(
            f"SELECT CAST(user_code AS INT) AS user_code, CAST(item_code AS INT) AS item_code, "
            f"CAST(confidence AS FLOAT) AS confidence FROM ({pairs_sql}) p"
        )
        model = ALS(
            rank=params.factors, maxIter=params.iterations, regParam=params.regularization,
            alpha=params.alpha, implicitPrefs=True, userCol="user_code", itemCol="item_code",
            ratingCol="confidence", seed=seed,
        ).fit(pairs)  # fmt: skip
        return (
            _factors(model.userFactors.toPandas(), n_users, params.factors),
            _factors(model.itemFactors.toPandas(), n_items, params.factors),
        )

    def close(self) -> None:
        for name in list(self._cached):
            self.drop(name)


def local_partitions(rows: int) -> int:
    """Shuffle partitions for a local Spark job over `rows` events. One partition is fastest on a small
    log, but a task holds its whole partition, and in local mode the tasks share the driver's heap with
    the cached tables: at 10M events a single partition ran out of a 4 GB heap."""
    return max(1, -(-rows // ROWS_PER_PARTITION))


def _factors(rows: pd.DataFrame, n: int, k: int) -> np.ndarray:
    factors = np.zeros((n, k), dtype=np.float32)
    if len(rows):
        vectors = np.stack(rows["features"].to_numpy()).astype(np.float32)
        factors[rows["id"].to_numpy(dtype=np.int64)] = vectors
    return factors


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as text:
        import csv

        return next(csv.reader(text), [])


@contextlib.contextmanager
def opened(name: str, memory_gb: float = 4.0, master: str = "local[2]", work_dir: Path | None = None):  # type: ignore[no-untyped-def]
    """An engine by name, closed (its work directory removed) afterwards."""
    engine: Engine = Spark(master, memory_gb) if name == "spark" else DuckDB(memory_gb, work_dir=work_dir)
    try:
        yield engine
    finally:
        engine.close()
