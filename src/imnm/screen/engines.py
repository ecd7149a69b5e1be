"""The two engines. Everything that differs between DuckDB and Spark lives here: how a source
is registered as a view, how a table's columns are listed, how a typed empty view is made,
and how rows come back. The SQL itself is the one definition in ``sql/``.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from imnm.screen.sources import (
    CDM_TABLE_NAMES,
    VOCABULARY_TABLE_NAMES,
    FhirNeed,
    TableNeed,
    duckdb_type,
    spark_type,
)

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
    # Whether a CTE read twice is computed twice (Spark) rather than once (DuckDB, PostgreSQL)
    inlines_ctes: bool

    def execute(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[dict[str, Any]]: ...

    def columns(self, view: str) -> set[str]: ...

    def register_omop(self, location: str, schema: str | None = None,
                      vocab: str | None = None) -> dict[str, str]: ...

    def conform(self, need: TableNeed) -> dict[str, int]: ...

    def materialize(self, view: str) -> None: ...

    def lookup(self, view: str) -> None: ...

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


OMOP_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
# How an empty value is written in CSV exports: empty, R's NA, SQL NULL, PostgreSQL's \N.
NULL_TOKENS = ("", "NA", "NULL", "null", "\\N", "NaN")


def _omop_files(directory: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        name = path.name.lower()
        for suffix in OMOP_SUFFIXES:
            if name.endswith(suffix):
                files[name.removesuffix(suffix)] = str(path)
    return files


def _delimiter(file: str) -> str:
    """The delimiter of a CSV export, from its header line (tab, comma, semicolon, pipe)."""
    import gzip

    opener = gzip.open if file.endswith(".gz") else open
    with opener(file, "rt", encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    counts = {d: header.count(d) for d in ("\t", ",", ";", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _null_list() -> str:
    return ", ".join(_string(t) for t in NULL_TOKENS)


@dataclass(frozen=True)
class _Casts:
    """How one engine's SQL turns an export's text into a column's type."""

    quote: Callable[[str], str]
    text_type: str
    nulls: str
    compatible: dict[str, tuple[str, ...]]  # target type -> source types used as they are
    day: Callable[[str], str]  # the date part of a date or date-time text
    date: Callable[[str], str]  # ISO (padded or not), then YYYYMMDD
    cast: Callable[[str, str], str]  # a cast that gives NULL on failure


def _conform_plan(types: dict[str, str], wanted: dict[str, str], casts: _Casts
                  ) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The select list that gives ``wanted`` columns their types, and per converted column
    (name, text expression, typed expression) to count what did not convert."""
    exprs, checks = [], []
    for column, have in types.items():
        target = wanted.get(column)
        ref = casts.quote(column)
        if target is None or have == target or have.startswith(
                casts.compatible.get(target, (target,))):
            exprs.append(ref)
            continue
        raw = f"TRIM(CAST({ref} AS {casts.text_type}))"
        text = f"CASE WHEN {raw} IN ({casts.nulls}) THEN NULL ELSE {raw} END"
        if target == "DATE":
            typed = casts.date(casts.day(text))
        elif target == "DOUBLE":
            typed = casts.cast(text, "DOUBLE")
        elif target in ("BIGINT", "INTEGER", "INT"):
            typed = (f"COALESCE({casts.cast(text, target)}, "
                     f"{casts.cast(casts.cast(text, 'DOUBLE'), target)})")
        else:
            typed = text
        exprs.append(f"{typed} AS {ref}")
        checks.append((column, text, typed))
    return exprs, checks


_DUCKDB_CASTS = _Casts(
    quote=lambda c: _ident(c), text_type="VARCHAR", nulls=_null_list(),
    compatible={"BIGINT": ("BIGINT", "INTEGER", "HUGEINT", "SMALLINT"),
                "INTEGER": ("INTEGER", "BIGINT", "SMALLINT"),
                "DOUBLE": ("DOUBLE", "FLOAT", "DECIMAL", "INTEGER", "BIGINT"),
                "DATE": ("DATE",), "VARCHAR": ("VARCHAR",)},
    day=lambda t: f"SPLIT_PART(REPLACE({t}, 'T', ' '), ' ', 1)",
    date=lambda d: f"COALESCE(TRY_CAST({d} AS DATE), CAST(TRY_STRPTIME({d}, '%Y%m%d') AS DATE))",
    cast=lambda t, kind: f"TRY_CAST({t} AS {kind})")
_SPARK_CASTS = _Casts(
    quote=lambda c: f"`{c}`", text_type="STRING",
    nulls=", ".join("'" + t.replace("\\", "\\\\") + "'" for t in NULL_TOKENS),
    compatible={"BIGINT": ("BIGINT", "INT", "SMALLINT"), "INT": ("INT", "BIGINT", "SMALLINT"),
                "DOUBLE": ("DOUBLE", "DECIMAL", "FLOAT", "INT", "BIGINT"), "DATE": ("DATE",),
                "STRING": ("STRING",)},
    day=lambda t: f"SPLIT(REPLACE({t}, 'T', ' '), ' ')[0]",
    date=lambda d: f"COALESCE(TO_DATE({d}, 'yyyy-M-d'), TO_DATE({d}, 'yyyyMMdd'))",
    cast=lambda t, kind: f"CAST({t} AS {kind})")


class _SqlViews:
    """What DuckDB and PostgreSQL share: views (re)defined from SQL text that is kept by name
    (so a later step can wrap a view; a view never reads itself), and the type conversions,
    empty tables and NULL columns built on them. Each engine says how to run SQL, how to
    (re)create a view, what its columns' types are, and how a neutral type is spelled."""

    casts: ClassVar[_Casts]
    spelled: ClassVar[Mapping[str, str]]  # neutral type -> this engine's type
    inlines_ctes = False

    def __init__(self) -> None:
        self._views: dict[str, str] = {}

    def lookup(self, view: str) -> None:
        """A lookup view of a few rows: nothing to do (the engine sees its size)."""

    def rows(self, sql: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _types(self, view: str) -> dict[str, str]:
        """Column (lower case) -> type (upper case) of a view."""
        raise NotImplementedError

    def _create_view(self, view: str, select: str) -> None:
        raise NotImplementedError

    def _before_conform(self) -> None:
        """What the casts need before the first conversion (nothing, by default)."""

    def columns(self, view: str) -> set[str]:
        return set(self._types(view))

    def _define(self, view: str, select: str) -> None:
        self._views[view] = select
        self._create_view(view, select)

    def conform(self, need: TableNeed) -> dict[str, int]:
        """Give the columns ``need`` reads their types, whatever the export wrote (text with
        NA or \\N for empty, dates as YYYY-MM-DD, YYYYMMDD, unpadded or with a time); returns
        per column how many values were present but could not be read."""
        exprs, checks = _conform_plan(self._types(need.name), dict(need.columns), self.casts)
        if not checks:
            return {}
        self._before_conform()
        relation = f"({self._views[need.name]}) AS src"
        counted = ", ".join(f"COUNT(*) FILTER (WHERE ({text}) IS NOT NULL AND ({typed}) IS NULL)"
                            f" AS {_ident(column)}" for column, text, typed in checks)
        bad = self.rows(f"SELECT {counted} FROM {relation}")[0]  # noqa: S608
        self._define(need.name, f"SELECT {', '.join(exprs)} FROM {relation}")  # noqa: S608
        return {column: int(n) for column, n in bad.items() if n}

    def empty_table(self, need: TableNeed) -> None:
        select = ", ".join(f"CAST(NULL AS {self.spelled[t]}) AS {c}" for c, t in need.columns)
        self._define(need.name, f"SELECT {select} WHERE FALSE")

    def add_null_columns(self, need: TableNeed, missing: list[tuple[str, str]]) -> None:
        extra = ", ".join(f"CAST(NULL AS {self.spelled[t]}) AS {c}" for c, t in missing)
        self._define(need.name, f"SELECT *, {extra} FROM ({self._views[need.name]}) AS src")  # noqa: S608


class DuckDBEngine(_SqlViews):
    """DuckDB, in process (the default)."""

    name = "duckdb"
    casts = _DUCKDB_CASTS
    spelled = MappingProxyType({t: t for t in ("BIGINT", "INTEGER", "DOUBLE", "VARCHAR",
                                               "DATE")})

    def __init__(self, connection: duckdb.DuckDBPyConnection | None = None) -> None:
        super().__init__()
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - duckdb is a core dependency
            raise EngineUnavailable("DuckDB is not installed: pip install duckdb") from exc
        self.con = connection or duckdb.connect()
        # DuckDB draws its own progress bar on stdout for queries over 2 s: imnm says its
        # steps on stderr, and stdout carries the worklist.
        self.con.execute("SET enable_progress_bar = false")
        self._attached: list[str] = []
        self._described: dict[str, dict[str, str]] = {}

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _types(self, view: str) -> dict[str, str]:
        if view in self._described:  # the source's own types, read when it was registered
            return dict(self._described[view])
        return {r[0].lower(): str(r[1]).upper() for r in
                self.con.execute(f"DESCRIBE {_ident(view)}").fetchall()}

    def _create_view(self, view: str, select: str) -> None:
        self._described.pop(view, None)  # redefined: its types are asked of DuckDB again
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(view)} AS {select}")

    def _view_lowercase(self, view: str, relation: str) -> None:
        describe = f"DESCRIBE SELECT * FROM {relation}"  # noqa: S608 - quoted parts only
        described = [(str(r[0]), str(r[1]).upper()) for r in
                     self.con.execute(describe).fetchall()]
        select = ", ".join(f"{_ident(c)} AS {_ident(c.lower())}" for c, _ in described)
        self._define(view, f"SELECT {select} FROM {relation}")  # noqa: S608
        # The view renames the columns and keeps their types: the checks that follow read
        # them from here rather than describing the view again.
        self._described[view] = {c.lower(): t for c, t in described}

    def _attach(self, path: Path) -> str:
        alias = f"omop_source_{len(self._attached)}"
        self.con.execute(f"ATTACH {_string(str(path))} AS {alias} (READ_ONLY)")
        self._attached.append(alias)
        return alias

    def _schema_tables(self, alias: str, schema: str | None, what: str) -> tuple[str, list[str]]:
        rows = self.con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = ? AND NOT internal", [alias, alias]).fetchall()
        by_schema: dict[str, list[str]] = {}
        for sch, table in rows:
            by_schema.setdefault(sch, []).append(table)
        if schema is None:
            holding = [sch for sch, tables in by_schema.items()
                       if what in {t.lower() for t in tables}]
            schema = "main" if "main" in holding or not holding else sorted(holding)[0]
        if schema not in by_schema:
            raise InputUnusable(
                f"--cdm-schema/--vocab: got schema {schema!r}; the DuckDB file has "
                f"{', '.join(sorted(by_schema)) or 'no schema with tables'}")
        return schema, by_schema[schema]

    def _register_location(self, location: str, schema: str | None, what: str,
                           only: tuple[str, ...] | None = None) -> dict[str, str]:
        path = Path(location)
        found: dict[str, str] = {}
        if path.is_file():
            alias = self._attach(path)
            schema, tables = self._schema_tables(alias, schema, what)
            for table in tables:
                if only is not None and table.lower() not in only:
                    continue
                relation = f"{alias}.{_ident(schema)}.{_ident(table)}"
                self._view_lowercase(table.lower(), relation)
                found[table.lower()] = relation
            return found
        if path.is_dir():
            for table, file in _omop_files(path).items():
                if only is not None and table not in only:
                    continue
                if file.endswith(".parquet"):
                    relation = f"read_parquet({_string(file)})"
                else:
                    relation = (f"read_csv({_string(file)}, header = true, all_varchar = true, "
                                f"delim = {_string(_delimiter(file))}, quote = '\"', "
                                "escape = '\"', strict_mode = false, null_padding = true)")
                self._view_lowercase(table, relation)
                found[table] = file
            return found
        raise InputUnusable(f"--omop: got {location!r}; expected a DuckDB file or a folder of "
                            "Parquet or CSV files")

    def register_vocabulary(self, location: str) -> dict[str, str]:
        """The vocabulary tables of a folder or DuckDB file (its schema holding CONCEPT)."""
        return self._register_location(location, None, "concept", VOCABULARY_TABLE_NAMES)

    def register_omop(self, location: str, schema: str | None = None,
                      vocab: str | None = None) -> dict[str, str]:
        found = self._register_location(location, schema, "person")
        if vocab is not None:
            if Path(vocab).exists():
                found |= self.register_vocabulary(vocab)
            elif Path(location).is_file():
                found |= self._register_location(location, vocab, "concept", VOCABULARY_TABLE_NAMES)
            else:
                raise InputUnusable(f"--vocab: got {vocab!r}; expected a folder or DuckDB file "
                                    "of vocabulary tables, or a schema of the --omop DuckDB file")
        return found

    def materialize(self, view: str) -> None:
        """Compute a (small, filtered) staging view once; later reads use the result."""
        table = f"{view}__computed"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_ident(table)} AS "  # noqa: S608
                         f"SELECT * FROM {_ident(view)}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(view)} AS "  # noqa: S608
                         f"SELECT * FROM {_ident(table)}")

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

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """Apache Spark: local mode in tests, a cluster through --spark-master, or a session."""

    name = "spark"
    inlines_ctes = True  # InlineCTE: every deterministic CTE is inlined at each reference

    def __init__(self, session: SparkSession | None = None, master: str | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineUnavailable(
                "Spark is not installed: pip install 'imnm[spark]' (PySpark, Java 17)") from exc
        self._owned = session is None
        log_config = Path(__file__).with_name("log4j2.properties")
        self.spark = session or (
            SparkSession.builder.master(master or "local[2]").appName("imnm-screen")
            .config("spark.driver.extraJavaOptions",
                    f"-Dlog4j2.configurationFile=file:{log_config}")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())
        self.spark.sparkContext.setLogLevel("ERROR")
        # Out-of-range array access and bad casts give NULL, as in DuckDB.
        self.spark.conf.set("spark.sql.ansi.enabled", "false")
        # A date that does not fit a pattern gives NULL (counted as unreadable), not an error.
        self.spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        # Broadcast joins are chosen on measured sizes only. Spark's static estimate of a
        # scan is the file's size scaled to the columns read, and of an aggregate its input's:
        # on a realistic vocabulary the concept_id column of 3 million concepts looked smaller
        # than the few thousand concept ids the events use, was broadcast, and exhausted a
        # default 1 GB driver ("Not enough memory to build and broadcast the table").
        # Adaptive execution broadcasts what its finished stages show to be small.
        self.spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        self.spark.conf.set("spark.sql.adaptive.enabled", "true")
        self.spark.conf.set("spark.sql.adaptive.autoBroadcastJoinThreshold", "10MB")

    def execute(self, sql: str) -> None:
        self.spark.sql(sql)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        return [row.asDict() for row in self.spark.sql(sql).collect()]

    def columns(self, view: str) -> set[str]:
        return {c.lower() for c in self.spark.table(view).columns}

    def _register(self, name: str, frame: Any) -> None:
        lowered = frame.toDF(*[c.lower() for c in frame.columns])
        lowered.createOrReplaceTempView(name)

    def _register_location(self, location: str, only: tuple[str, ...] | None = None
                           ) -> dict[str, str]:
        found: dict[str, str] = {}
        if location.startswith("spark:"):
            database = location.removeprefix("spark:") or None
            for entry in self.spark.catalog.listTables(database):
                name = entry.name.lower()
                if only is not None and name not in only:
                    continue
                temporary = bool(entry.isTemporary)
                qualified = entry.name if temporary or not database else \
                    f"{database}.{entry.name}"
                frame = self.spark.table(qualified)
                if not (temporary and name == entry.name
                        and all(c == c.lower() for c in frame.columns)):
                    self._register(name, frame)  # a session view already usable is kept
                found[name] = qualified
            return found
        path = Path(location)
        if path.is_dir():
            for table, file in _omop_files(path).items():
                if only is not None and table not in only:
                    continue
                reader = self.spark.read
                frame = (reader.parquet(file) if file.endswith(".parquet")
                         else reader.option("header", True).option("sep", _delimiter(file))
                         .option("quote", '"').option("escape", '"').csv(file))
                self._register(table, frame)
                found[table] = file
            return found
        raise InputUnusable(
            f"--omop: got {location!r}; expected for Spark a folder of Parquet or CSV files or "
            "'spark:<database>' for tables in the session (Spark cannot read a DuckDB file)")

    def register_omop(self, location: str, schema: str | None = None,
                      vocab: str | None = None) -> dict[str, str]:
        if schema is not None and location.startswith("spark:"):
            location = f"spark:{schema}"
        elif schema is not None:
            raise InputUnusable("--cdm-schema: only for a DuckDB file or 'spark:' tables; a "
                                "folder of files has no schemas")
        found = self._register_location(location)
        if vocab is not None:
            where = vocab if vocab.startswith("spark:") or Path(vocab).exists() \
                else f"spark:{vocab}"
            found |= self._register_location(where, VOCABULARY_TABLE_NAMES)
        return found

    def materialize(self, view: str) -> None:
        """Compute a (small, filtered) staging view once, in memory; later reads use it, and
        the plans that read it stay small (the lineage is cut)."""
        self.spark.table(view).localCheckpoint(eager=True).createOrReplaceTempView(view)

    def lookup(self, view: str) -> None:
        """A lookup view of a few rows (rendered from the knowledge) is broadcast to every
        join that reads it. Broadcasts chosen on size are off (see __init__), so without the
        hint each join with a lookup would shuffle the rows it looks up: ten shuffles of the
        matching measurements alone."""
        self.spark.table(view).hint("broadcast").createOrReplaceTempView(view)

    def conform(self, need: TableNeed) -> dict[str, int]:
        """As DuckDBEngine.conform, in Spark SQL."""
        frame = self.spark.table(need.name)
        types = {name.lower(): kind.upper() for name, kind in frame.dtypes}
        wanted = {c: _NEUTRAL_TO_SPARK[t] for c, t in need.columns}
        exprs, checks = _conform_plan(types, wanted, _SPARK_CASTS)
        if not checks:
            return {}
        counted = [f"SUM(CASE WHEN ({text}) IS NOT NULL AND ({typed}) IS NULL THEN 1 ELSE 0 END)"
                   f" AS `{column}`" for column, text, typed in checks]
        bad = frame.selectExpr(*counted).collect()[0].asDict()
        frame.selectExpr(*exprs).createOrReplaceTempView(need.name)
        return {column: int(n) for column, n in bad.items() if n}

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


_PG_TYPES = {"BIGINT": "BIGINT", "INTEGER": "INTEGER", "INT": "INTEGER",
             "DOUBLE": "DOUBLE PRECISION", "VARCHAR": "TEXT", "DATE": "DATE"}
# Casts that give NULL on failure, as TRY_CAST does in DuckDB: PostgreSQL 15 has no such
# cast, so each is a function in the session's own pg_temp schema (nothing is created in the
# site's schemas; a read-only role with TEMP privilege is enough).
_PG_TRY_FUNCTIONS = tuple(
    f"CREATE OR REPLACE FUNCTION pg_temp.imnm_try_{name}(t TEXT) RETURNS {kind} AS $$ "
    f"BEGIN RETURN {expr}; EXCEPTION WHEN others THEN RETURN NULL; END $$ "
    "LANGUAGE plpgsql IMMUTABLE"
    for name, kind, expr in (
        ("bigint", "BIGINT", "t::BIGINT"), ("integer", "INTEGER", "t::INTEGER"),
        ("double", "DOUBLE PRECISION", "t::DOUBLE PRECISION"),
        ("date", "DATE", "CASE WHEN t ~ '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$' THEN t::DATE END"),
        ("compact_date", "DATE",
         "CASE WHEN t ~ '^[0-9]{8}$' THEN TO_DATE(t, 'YYYYMMDD') END")))
_PG_CASTS = _Casts(
    quote=lambda c: _ident(c), text_type="TEXT", nulls=_null_list(),
    compatible={"BIGINT": ("BIGINT", "INTEGER", "SMALLINT", "NUMERIC"),
                "INTEGER": ("INTEGER", "BIGINT", "SMALLINT", "NUMERIC"),
                "DOUBLE": ("DOUBLE PRECISION", "REAL", "NUMERIC", "INTEGER", "BIGINT"),
                "DATE": ("DATE", "TIMESTAMP"), "VARCHAR": ("TEXT", "CHARACTER")},
    day=lambda t: f"SPLIT_PART(REPLACE({t}, 'T', ' '), ' ', 1)",
    date=lambda d: f"COALESCE(pg_temp.imnm_try_date({d}), pg_temp.imnm_try_compact_date({d}))",
    cast=lambda t, kind: "pg_temp.imnm_try_" + {"BIGINT": "bigint", "INTEGER": "integer",
                                                "INT": "integer", "DOUBLE": "double"}[kind]
    + f"(CAST({t} AS TEXT))")


def is_postgres_url(location: str) -> bool:
    """Whether --omop names a PostgreSQL database rather than a file or folder."""
    return location.startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


class PostgresEngine(_SqlViews):
    """The site's own PostgreSQL: the screen runs inside it, in temporary views and tables of
    one session; no row leaves the database but the worklist and the counts."""

    name = "postgres"
    casts = _PG_CASTS
    spelled = MappingProxyType(_PG_TYPES)

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a core dependency
            raise EngineUnavailable("psycopg is not installed: pip install psycopg") from exc
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            self.con = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise InputUnusable("--omop: cannot connect to the PostgreSQL database "
                                f"({type(exc).__name__}; check host, port, database and "
                                "credentials)") from None
        self._functions = False

    def execute(self, sql: str) -> None:
        with self.con.cursor() as cur:
            cur.execute(sql.encode())

    def rows(self, sql: str) -> list[dict[str, Any]]:
        with self.con.cursor() as cur:
            cur.execute(sql.encode())
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _types(self, view: str) -> dict[str, str]:
        found = self.rows(
            "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS kind "  # noqa: S608
            f"FROM pg_attribute AS a WHERE a.attrelid = {_string(_ident(view))}::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")
        return {str(r["name"]).lower(): str(r["kind"]).upper() for r in found}

    def _create_view(self, view: str, select: str) -> None:
        self.execute(f"DROP VIEW IF EXISTS {_ident(view)}")
        self.execute(f"CREATE TEMP VIEW {_ident(view)} AS {select}")

    def _schema_tables(self, schema: str | None, what: str, option: str
                       ) -> tuple[str, list[str]]:
        found = self.rows(
            "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_schema NOT LIKE 'pg_temp%'")
        by_schema: dict[str, list[str]] = {}
        for row in found:
            by_schema.setdefault(str(row["s"]), []).append(str(row["t"]))
        if schema is None:
            holding = sorted(s for s, tables in by_schema.items()
                             if what in {t.lower() for t in tables})
            if len(holding) != 1:
                raise InputUnusable(
                    f"{option}: name the schema of table {what.upper()}; the database has it "
                    f"in {', '.join(holding) or 'no schema'}")
            schema = holding[0]
        if schema not in by_schema:
            raise InputUnusable(f"{option}: got schema {schema!r}; the database has "
                                f"{', '.join(sorted(by_schema)) or 'no schema with tables'}")
        return schema, by_schema[schema]

    def _register_schema(self, schema: str | None, what: str, option: str,
                         only: tuple[str, ...]) -> dict[str, str]:
        schema, tables = self._schema_tables(schema, what, option)
        found = {}
        for table in tables:
            if table.lower() not in only:
                continue
            relation = f"{_ident(schema)}.{_ident(table)}"
            cols = self.rows(
                "SELECT column_name AS c FROM information_schema.columns "  # noqa: S608
                f"WHERE table_schema = {_string(schema)} AND table_name = {_string(table)} "
                "ORDER BY ordinal_position")
            select = ", ".join(f"{_ident(str(r['c']))} AS {_ident(str(r['c']).lower())}"
                               for r in cols)
            self._define(table.lower(), f"SELECT {select} FROM {relation}")  # noqa: S608
            found[table.lower()] = f"{schema}.{table}"
        return found

    def register_omop(self, location: str, schema: str | None = None,
                      vocab: str | None = None) -> dict[str, str]:
        cdm, vocabulary = CDM_TABLE_NAMES, VOCABULARY_TABLE_NAMES
        if vocab is None:
            return self._register_schema(schema, "person", "--cdm-schema", cdm + vocabulary)
        found = self._register_schema(schema, "person", "--cdm-schema", cdm)
        return found | self._register_schema(vocab, "concept", "--vocab", vocabulary)

    def materialize(self, view: str) -> None:
        """Compute a (small, filtered) staging view once into a temporary table, with
        statistics, so the planner sizes later joins by what is really there."""
        table = f"{view}__computed"
        self.execute(f"DROP TABLE IF EXISTS {_ident(table)}")
        self.execute(f"CREATE TEMP TABLE {_ident(table)} AS "  # noqa: S608
                     f"SELECT * FROM {_ident(view)}")
        self.execute(f"ANALYZE {_ident(table)}")
        self.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(view)} AS "  # noqa: S608
                     f"SELECT * FROM {_ident(table)}")

    def _before_conform(self) -> None:
        """The casts that give NULL on failure are functions in pg_temp: made once."""
        if not self._functions:
            for statement in _PG_TRY_FUNCTIONS:
                self.execute(statement)
            self._functions = True

    def register_fhir(self, directory: Path, needs: tuple[FhirNeed, ...]) -> set[str]:
        raise InputUnusable("--fhir with PostgreSQL: the screen reads FHIR NDJSON files with "
                            "DuckDB or Spark; PostgreSQL is for an OMOP CDM (--omop URL)")

    def close(self) -> None:
        self.con.close()
