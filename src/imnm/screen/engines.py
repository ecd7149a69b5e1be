"""The two engines. Everything that differs between DuckDB and Spark lives here: how a source
is registered as a view, how a table's columns are listed, how a typed empty view is made,
and how rows come back. The SQL itself is the one definition in ``sql/``.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imnm.screen.sources import FhirNeed, TableNeed, duckdb_type, spark_type

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import SparkSession

_NEUTRAL_TO_SPARK = {"BIGINT": "BIGINT", "INTEGER": "INT", "DOUBLE": "DOUBLE",
                     "VARCHAR": "STRING", "DATE": "DATE"}


class EngineUnavailable(RuntimeError):
    """The engine's package is not installed; says what to install."""


class InputUnusable(ValueError):
    """An input cannot be screened at all (names the input and what is wrong)."""


class Engine(Protocol):
    """What the screen needs from an engine."""

    name: str

    def execute(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[dict[str, Any]]: ...

    def columns(self, view: str) -> set[str]: ...

    def register_omop(self, location: str) -> dict[str, str]: ...

    def register_fhir(self, directory: Path, needs: tuple[FhirNeed, ...]) -> set[str]: ...

    def empty_table(self, need: TableNeed) -> None: ...

    def add_null_columns(self, need: TableNeed, missing: list[tuple[str, str]]) -> None: ...

    def close(self) -> None: ...


def _string(text: str) -> str:
    """A SQL string literal (quotes doubled): file paths go into SQL only through this."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    """A quoted SQL identifier: table and column names go into SQL only through this."""
    return '"' + name.replace('"', '""') + '"'


def _fhir_files(directory: Path, resource: str) -> list[str]:
    found = []
    for pattern in (f"{resource}.ndjson", f"{resource}.*.ndjson", f"{resource}.ndjson.gz",
                    f"{resource}.*.ndjson.gz", f"*.{resource}.ndjson"):
        found += glob.glob(str(directory / pattern))
    return sorted(set(found))


def _omop_files(directory: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        name = path.name.lower()
        for suffix in (".parquet", ".csv", ".csv.gz"):
            if name.endswith(suffix):
                files[name.removesuffix(suffix)] = str(path)
    return files


class DuckDBEngine:
    """DuckDB, in process (the default)."""

    name = "duckdb"

    def __init__(self, connection: duckdb.DuckDBPyConnection | None = None) -> None:
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - duckdb is a core dependency
            raise EngineUnavailable("DuckDB is not installed: pip install duckdb") from exc
        self.con = connection or duckdb.connect()

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def columns(self, view: str) -> set[str]:
        return {r[0].lower() for r in self.con.execute(f"DESCRIBE {_ident(view)}").fetchall()}

    def _view_lowercase(self, view: str, relation: str) -> None:
        describe = f"DESCRIBE SELECT * FROM {relation}"  # noqa: S608 - quoted parts only
        cols = [r[0] for r in self.con.execute(describe).fetchall()]
        select = ", ".join(f"{_ident(c)} AS {_ident(c.lower())}" for c in cols)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(view)} AS "  # noqa: S608
                         f"SELECT {select} FROM {relation}")

    def register_omop(self, location: str) -> dict[str, str]:
        path = Path(location)
        found: dict[str, str] = {}
        if path.is_file():
            self.con.execute(f"ATTACH {_string(str(path))} AS omop_source (READ_ONLY)")
            tables = self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'omop_source'"
            ).fetchall()
            for (table,) in tables:
                relation = f"omop_source.main.{_ident(table)}"
                self._view_lowercase(table.lower(), relation)
                found[table.lower()] = relation
            return found
        if path.is_dir():
            for table, file in _omop_files(path).items():
                reader = ("read_parquet" if file.endswith(".parquet")
                          else "read_csv")
                options = "" if reader == "read_parquet" else ", header = true"
                self._view_lowercase(table, f"{reader}({_string(file)}{options})")
                found[table] = file
            return found
        raise InputUnusable(f"--omop: got {location!r}; expected a DuckDB file or a folder of "
                            "Parquet or CSV files")

    def register_fhir(self, directory: Path, needs: tuple[FhirNeed, ...]) -> set[str]:
        present = set()
        for need in needs:
            columns = ", ".join(f"'{n}': '{duckdb_type(t)}'" for n, t in need.fields)
            files = _fhir_files(directory, need.resource)
            if files:
                listed = ", ".join(_string(f) for f in files)
                self.con.execute(
                    f"CREATE OR REPLACE TEMP VIEW {need.view} AS SELECT * FROM read_json("  # noqa: S608
                    f"[{listed}], format = 'newline_delimited', columns = {{{columns}}})")
                present.add(need.resource)
            else:
                select = ", ".join(f'CAST(NULL AS {duckdb_type(t)}) AS "{n}"'
                                   for n, t in need.fields)
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {need.view} AS SELECT {select} "
                                 "WHERE FALSE")
        return present

    def empty_table(self, need: TableNeed) -> None:
        select = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in need.columns)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {need.name} AS SELECT {select} "
                         "WHERE FALSE")

    def add_null_columns(self, need: TableNeed, missing: list[tuple[str, str]]) -> None:
        extra = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in missing)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {need.name}__with_nulls AS "  # noqa: S608
                         f"SELECT *, {extra} FROM {need.name}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {need.name} AS "  # noqa: S608
                         f"SELECT * FROM {need.name}__with_nulls")

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """Apache Spark: local mode in tests, a cluster through --spark-master, or a session."""

    name = "spark"

    def __init__(self, session: SparkSession | None = None, master: str | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineUnavailable(
                "Spark is not installed: pip install 'imnm[spark]' (PySpark, Java 17)") from exc
        self._owned = session is None
        self.spark = session or (
            SparkSession.builder.master(master or "local[2]").appName("imnm-screen")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())
        self.spark.sparkContext.setLogLevel("ERROR")
        # Out-of-range array access and bad casts give NULL, as in DuckDB.
        self.spark.conf.set("spark.sql.ansi.enabled", "false")

    def execute(self, sql: str) -> None:
        self.spark.sql(sql)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        return [row.asDict() for row in self.spark.sql(sql).collect()]

    def columns(self, view: str) -> set[str]:
        return {c.lower() for c in self.spark.table(view).columns}

    def _register(self, name: str, frame: Any) -> None:
        lowered = frame.toDF(*[c.lower() for c in frame.columns])
        lowered.createOrReplaceTempView(name)

    def register_omop(self, location: str) -> dict[str, str]:
        found: dict[str, str] = {}
        if location.startswith("spark:"):
            database = location.removeprefix("spark:") or None
            for entry in self.spark.catalog.listTables(database):
                temporary = bool(entry.isTemporary)
                qualified = entry.name if temporary or not database else \
                    f"{database}.{entry.name}"
                frame = self.spark.table(qualified)
                name = entry.name.lower()
                if not (temporary and name == entry.name
                        and all(c == c.lower() for c in frame.columns)):
                    self._register(name, frame)  # a session view already usable is kept
                found[name] = qualified
            return found
        path = Path(location)
        if path.is_dir():
            for table, file in _omop_files(path).items():
                reader = self.spark.read
                frame = (reader.parquet(file) if file.endswith(".parquet")
                         else reader.option("header", True).option("inferSchema", True).csv(file))
                self._register(table, frame)
                found[table] = file
            return found
        raise InputUnusable(
            f"--omop: got {location!r}; expected for Spark a folder of Parquet or CSV files or "
            "'spark:<database>' for tables in the session (Spark cannot read a DuckDB file)")

    def register_fhir(self, directory: Path, needs: tuple[FhirNeed, ...]) -> set[str]:
        present = set()
        for need in needs:
            ddl = ", ".join(f"`{n}` {spark_type(t)}" for n, t in need.fields)
            files = _fhir_files(directory, need.resource)
            if files:
                frame = self.spark.read.schema(ddl).json(files)
                present.add(need.resource)
            else:
                frame = self.spark.createDataFrame([], schema=ddl)
            frame.createOrReplaceTempView(need.view)
        return present

    def empty_table(self, need: TableNeed) -> None:
        ddl = ", ".join(f"{c} {_NEUTRAL_TO_SPARK[t]}" for c, t in need.columns)
        self.spark.createDataFrame([], schema=ddl).createOrReplaceTempView(need.name)

    def add_null_columns(self, need: TableNeed, missing: list[tuple[str, str]]) -> None:
        frame = self.spark.table(need.name)
        for column, kind in missing:
            frame = frame.selectExpr("*", f"CAST(NULL AS {_NEUTRAL_TO_SPARK[kind]}) AS {column}")
        frame.createOrReplaceTempView(need.name)

    def close(self) -> None:
        if self._owned:
            self.spark.stop()
