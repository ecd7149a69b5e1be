"""The one screen definition: SQL written in DuckDB's dialect (``sql/*.sql``), with lookup
views rendered from the knowledge files, transpiled to Spark SQL by SQLGlot with
``unsupported_level=RAISE``. Whatever differs between engines lives in :data:`DIALECTS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlglot import exp

from imnm import quantities
from imnm.codes import URIS, CodeSystem
from imnm.knowledge import Knowledge
from imnm.screen.sources import CDM_TABLE_NAMES, VOCABULARY_TABLE_NAMES
from imnm.vocabulary import CORTICOSTEROIDS

Engine = Literal["duckdb", "spark", "postgres"]
DIALECTS: dict[Engine, str] = {"duckdb": "duckdb", "spark": "spark", "postgres": "postgres"}
# The dialects `imnm screen --emit-sql` writes, for sites that cannot run Python beside their
# data. Each is checked by SQLGlot's parser for that dialect in the tests; DuckDB, Spark and
# PostgreSQL are also executed there.
EMIT_DIALECTS = ("postgres", "spark", "databricks", "bigquery", "snowflake", "redshift",
                 "tsql", "duckdb")
# Dialects without temporary views: the emitted script makes temporary tables instead.
TEMP_TABLE_DIALECTS = ("bigquery", "redshift", "tsql")
OMOP_VOCABULARIES = {"ICD10CM": CodeSystem.icd10cm, "SNOMED": CodeSystem.snomedct,
                     "LOINC": CodeSystem.loinc, "RxNorm": CodeSystem.rxnorm}
# CK units as sites spell them (matched case-insensitively after trimming), shared with the
# FHIR reader; their factors to U/L are pint's, converted when the knowledge loads
# (Knowledge.ck_unit_factors).
CK_UNIT_SPELLINGS = quantities.ACTIVITY_SPELLINGS
# CONCEPT_RELATIONSHIP steps that lead from a member concept to a more specific one (read in
# reverse: concept_id_1 is a member when concept_id_2 is), as OHDSI concept-set expansion does
# when CONCEPT_ANCESTOR is not there.
HIERARCHY_RELATIONSHIPS = ("Maps to", "Consists of", "RxNorm has ing", "Is a", "Tradename of")
LABEL_AND_TEST_SETS = ("dystrophy", "unexplained_myopathy", "myositis", "ck", "antibody_test",
                       "genetic_test")
NO_UPPER_AGE = 200.0  # stands for "no upper bound" in the bands view (ages are <= 25 here)


POPULATION_QUERY = (
    "SELECT p.sex, FLOOR(DATE_DIFF('day', p.birth_date, params.as_of) / 365.25) AS age, "
    "COUNT(*) AS n FROM imnm_person AS p CROSS JOIN imnm_params AS params "
    "WHERE p.birth_date IS NULL "
    "OR DATE_DIFF('day', p.birth_date, params.as_of) / 365.25 <= params.max_age_years "
    "GROUP BY p.sex, FLOOR(DATE_DIFF('day', p.birth_date, params.as_of) / 365.25);\n")


class ScreenDefinitionError(ValueError):
    """The screen cannot be rendered or transpiled for an engine (names the statement)."""


@dataclass(frozen=True)
class Parameters:
    """The values the screen takes from parameters.toml (and the screen date)."""

    as_of: dt.date
    min_ck_multiple: float
    max_age_years: float
    review_days: int

    @classmethod
    def from_knowledge(cls, knowledge: Knowledge, as_of: dt.date,
                       overrides: dict[str, float] | None = None) -> Parameters:
        """Defaults from the knowledge base, with named overrides."""
        values = {k: p.value for k, p in knowledge.parameters.items()} | dict(overrides or {})
        return cls(as_of=as_of,
                   min_ck_multiple=float(values["suspicion_min_ck_multiple_of_uln"]),
                   max_age_years=float(values["screen_max_age_years"]),
                   review_days=int(float(values["screen_review_corticosteroid_alone_weeks"]) * 7))


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    text = str(value).replace("'", "''")
    if "\n" in text or "\r" in text:  # split() relies on literals without line breaks
        raise ScreenDefinitionError(f"a knowledge value holds a line break: {text[:40]!r}")
    return f"'{text}'"


def _values_view(name: str, columns: tuple[str, ...],
                 rows: Sequence[tuple[object, ...]]) -> str:
    body = ",\n    ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return (f"CREATE OR REPLACE TEMPORARY VIEW {name} AS\nSELECT * FROM (VALUES\n    {body}\n)"
            f" AS v({', '.join(columns)});")


def lookup_views(knowledge: Knowledge, params: Parameters) -> str:
    """The lookup views the screen joins, rendered from the knowledge base."""
    codes = [(c.set, c.system.value, c.code, c.match, c.concept, "code")
             for c in knowledge.codes if c.set in LABEL_AND_TEST_SETS]
    codes += [("drug", CodeSystem.rxnorm.value, code, "exact", concept, how)
              for code, concept, how in knowledge.drug_codes()]
    ingredients = {c.code: c.concept for c in knowledge.codes_in("drug")}
    products = [(p.omop_concept_id, ingredients[p.ingredient]) for p in knowledge.products
                if p.omop_concept_id is not None and p.ingredient in ingredients]
    answers = [(c.system.value, c.code, c.concept) for c in knowledge.codes_in("answer")]
    answers += [(a.system.value, a.code, a.answer) for a in knowledge.answer_codes]
    bands = []
    for band in knowledge.ck_bands:
        limit = quantities.convert(band.upper_limit, band.unit, "activity")
        bands.append((band.sex, band.min_age_years,
                      band.max_age_years if band.max_age_years is not None else NO_UPPER_AGE,
                      limit))
    drug_concepts = sorted({c.concept for c in knowledge.codes_in("drug") if c.concept})
    steroids = sorted(d.value for d in CORTICOSTEROIDS)
    others = [d for d in drug_concepts if d not in steroids and d != "statin"]
    parts = [
        "-- lookup views rendered from the knowledge files (imnm.screen.definition)",
        _values_view("imnm_params", ("as_of", "max_age_years", "min_ck_multiple",
                                     "review_days"),
                     [(params.as_of, params.max_age_years, params.min_ck_multiple,
                       params.review_days)]),
        _values_view("imnm_codes", ("set_name", "system", "code", "match_kind", "concept",
                                    "how"), codes),
        _values_view("imnm_product_concepts", ("concept_id", "concept"), products),
        _values_view("imnm_hierarchy", ("relationship_id",),
                     [(r,) for r in HIERARCHY_RELATIONSHIPS]),
        _values_view("imnm_value_concepts", ("concept_id", "answer"),
                     [(v.concept_id, v.answer) for v in knowledge.value_concepts]),
        _values_view("imnm_answer_codes", ("system", "code", "answer"), answers),
        _values_view("imnm_interpretations", ("code", "answer"),
                     [(i.code, i.answer) for i in knowledge.interpretations]),
        _values_view("imnm_answer_words", ("text", "answer"),
                     [(w.text, w.answer) for w in knowledge.answer_words]),
        _values_view("imnm_drug_names", ("name", "concept"), knowledge.drug_names()),
        _values_view("imnm_vocabulary", ("vocabulary_id", "system"),
                     [(k, v.value) for k, v in OMOP_VOCABULARIES.items()]),
        _values_view("imnm_fhir_system", ("uri", "system"),
                     [(uri, system.value) for system, uri in URIS.items()]),
        _values_view("imnm_unit_factors", ("spelling", "unit", "factor"),
                     [(spelling, CK_UNIT_SPELLINGS[spelling], factor)
                      for spelling, factor in sorted(knowledge.ck_unit_factors.items())]),
        _values_view("imnm_ck_bands", ("sex", "min_age_years", "max_age_years", "upper_limit"),
                     bands),
        _values_view("imnm_corticosteroids", ("concept",), [(s,) for s in steroids]),
        _values_view("imnm_immunosuppressants", ("concept",), [(o,) for o in others]),
        "-- which inputs are missing: all present here; the run replaces this view",
        _values_view("imnm_inputs", ("condition_missing", "measurement_missing",
                                     "drug_missing"), [(0, 0, 0)]),
    ]
    return "\n\n".join(parts)


def _template(name: str) -> str:
    return (resources.files("imnm.screen") / "sql" / name).read_text(encoding="utf-8")


def split(sql: str) -> list[str]:
    """Split imnm's own SQL (``sql/*.sql`` and the lookup views) into statements without
    parsing it: a statement ends with ';' at the end of a line that is not a comment, and no
    string literal holds a line break (a test checks the pieces against SQLGlot's parser).
    Parsing the lookup views with SQLGlot took 0.3 s of every DuckDB screen."""
    out: list[str] = []
    lines: list[str] = []
    for line in sql.splitlines():
        lines.append(line)
        if not line.lstrip().startswith("--") and line.rstrip().endswith(";"):
            out.append("\n".join(lines).strip().removesuffix(";").rstrip())
            lines = []
    rest = "\n".join(lines).strip()
    if any(line.strip() and not line.lstrip().startswith("--") for line in lines):
        out.append(rest)
    return out


def parse(sql: str) -> list[exp.Expr]:
    """imnm's SQL (DuckDB dialect) as SQLGlot trees, one per statement. A statement SQLGlot
    cannot parse fully (it would fall back to passing the text through unchanged) is an
    error, so no engine or dialect is ever handed DuckDB text it was not written for.
    (SQLGlot is imported here and in :func:`_write`, not with the module: the DuckDB screen
    never needs it, and importing it costs about 0.1 s.)"""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, SqlglotError

    trees: list[exp.Expr] = []
    for index, piece in enumerate(split(sql)):
        try:
            tree = sqlglot.parse_one(piece, read="duckdb", error_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            raise ScreenDefinitionError(f"statement {index + 1} does not parse: {exc}") from exc
        if isinstance(tree, exp.Command):
            raise ScreenDefinitionError(f"statement {index + 1} does not parse fully: "
                                        f"{piece[:80]!r}")
        trees.append(tree)
    return trees


def _write(tree: exp.Expr, dialect: str, *, temp_tables: bool = False,
           schemas: dict[str, str] | None = None) -> str:
    """One statement in ``dialect``. ``temp_tables`` turns each CREATE TEMPORARY VIEW into a
    temporary table (dialects without temporary views); ``schemas`` qualifies the CDM and
    vocabulary tables with the site's schemas."""
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, SqlglotError

    tree = tree.copy()
    if schemas:
        for table in tree.find_all(exp.Table):
            schema = schemas.get(table.name.lower())
            if schema and not table.args.get("db"):
                table.set("db", exp.to_identifier(schema))
    if dialect == "postgres":  # SQLGlot writes DATE_FROM_PARTS, which PostgreSQL lacks,
        for made in list(tree.find_all(exp.DateFromParts)):
            made.replace(exp.Anonymous(this="MAKE_DATE", expressions=[
                made.args["year"], made.args["month"], made.args["day"]]))
        for rounded in list(tree.find_all(exp.Round)):  # and ROUND(x, n) needs a NUMERIC x
            if rounded.args.get("decimals") is not None:
                rounded.set("this", exp.cast(rounded.this, "DECIMAL"))
    if temp_tables and isinstance(tree, exp.Create) and str(tree.args.get("kind")) == "VIEW":
        tree.set("kind", "TABLE")
        tree.set("replace", False)
        if dialect == "tsql":  # a temporary table is #name; SQLGlot renames the one created
            target = tree.find(exp.Table)
            for table in tree.find_all(exp.Table):
                if table is not target and table.name.startswith("imnm_") \
                        and not table.args.get("db"):
                    table.set("this", exp.to_identifier("#" + table.name))
    try:
        return tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE, pretty=True)
    except SqlglotError as exc:
        raise ScreenDefinitionError(f"cannot be written for {dialect}: {exc}") from exc


def emit(knowledge: Knowledge, params: Parameters, dialect: str, *,
         cdm_schema: str | None = None, vocab_schema: str | None = None) -> str:
    """The complete screen as one SQL script in ``dialect``, for a site to run itself: the
    lookup views, the staging, then three queries (the worklist, the children in scope by
    sex and age, the coverage counts). Reads the CDM tables from ``cdm_schema`` and the
    vocabulary from ``vocab_schema`` (default: the CDM's), and assumes every table is
    there; ``imnm screen --omop`` is the route that checks what is missing."""
    from imnm import __version__

    if dialect not in EMIT_DIALECTS:
        raise ScreenDefinitionError(f"--dialect: got {dialect!r}; expected one of "
                                    f"{', '.join(EMIT_DIALECTS)}")
    schemas = {t: cdm_schema for t in CDM_TABLE_NAMES if cdm_schema}
    vocab = vocab_schema or cdm_schema
    schemas |= {t: vocab for t in VOCABULARY_TABLE_NAMES if vocab}
    setup = parse(lookup_views(knowledge, params) + "\n" + "\n".join(
        _template(name) for name in ("stage_omop.sql", "coverage_results.sql",
                                     "coverage_omop.sql")))
    queries = (("the worklist: one row per child and tier", _template("screen.sql")),
               ("children in scope, by sex and whole years of age", POPULATION_QUERY),
               ("coverage: what was read, used and could not be read",
                "SELECT input, item, n FROM imnm_coverage ORDER BY input, item"))
    temp = dialect in TEMP_TABLE_DIALECTS
    out = [f"-- imnm {__version__} screen (knowledge {knowledge.digest}), written for "
           f"{dialect} by imnm screen --emit-sql",
           f"-- Screen date {params.as_of.isoformat()}; CDM schema "
           f"{cdm_schema or '(unqualified)'}, vocabulary schema {vocab or '(unqualified)'}.",
           "-- Creates temporary " + ("tables" if temp else "views") + " named imnm_*, then "
           "runs the three queries at the end. Every CDM and vocabulary table is assumed to "
           "be present (imnm screen --omop checks that and says what is missing).", ""]
    for tree in setup:
        out.append(_write(tree, dialect, temp_tables=temp, schemas=schemas) + ";\n")
    for index, (label, sql) in enumerate(queries, start=1):
        out.append(f"-- query {index}: {label}")
        out += [_write(tree, dialect, temp_tables=temp, schemas=schemas) + ";\n"
                for tree in parse(sql)]
    return "\n".join(out)


def transpile(sql: str, engine: Engine) -> list[str]:
    """The statements of ``sql`` (DuckDB dialect) for ``engine``; a construct the target
    cannot express raises :class:`ScreenDefinitionError` naming the statement. DuckDB gets
    the statements as written."""
    if engine == "duckdb":
        return split(sql)
    out = []
    for index, tree in enumerate(parse(sql)):
        try:
            out.append(_write(tree, DIALECTS[engine]))
        except ScreenDefinitionError as exc:
            raise ScreenDefinitionError(f"statement {index + 1} {exc}") from exc
    return out


@dataclass(frozen=True)
class Rendered:
    """The screen for one engine and one input kind, statement by statement."""

    engine: Engine
    source: Literal["omop", "fhir"]
    setup: tuple[str, ...]  # lookup views and staging views
    query: str  # the worklist query
    count_query: str  # children in scope, by sex and whole years of age
    lookups: int = 0  # how many of the setup statements (the first) are lookup views

    def script(self) -> str:
        """Everything as one readable script (the snapshot files)."""
        return ";\n\n".join((*self.setup, self.query)) + ";\n"


def render(knowledge: Knowledge, params: Parameters, engine: Engine,
           source: Literal["omop", "fhir"]) -> Rendered:
    """Render the screen for ``engine`` reading ``source`` data."""
    lookups = transpile(lookup_views(knowledge, params), engine)
    staging = transpile("\n".join(_template(name) for name in (
        f"stage_{source}.sql", "coverage_results.sql", f"coverage_{source}.sql")), engine)
    query = transpile(_template("screen.sql"), engine)
    if len(query) != 1:
        raise ScreenDefinitionError("screen.sql must hold exactly one query")
    count = transpile(POPULATION_QUERY, engine)[0]
    return Rendered(engine, source, tuple(lookups + staging), query[0], count, len(lookups))
