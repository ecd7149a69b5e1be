"""Read the knowledge files, validate every entry, cross-check them, and build :class:`Knowledge`.

The loader reads files and nothing else. Every problem in every file is collected and raised
at once as :class:`imnm.errors.KnowledgeError`, each naming the file, the entry and the
problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from imnm import quantities
from imnm.codes import EXPECTED, CodeSystem, is_valid
from imnm.errors import KnowledgeError, Problem, shorten
from imnm.knowledge._models import (
    AnswerCode,
    AnswerWord,
    AntibodyProfile,
    Cited,
    CkBand,
    CodeEntry,
    Cumulative,
    DoseRule,
    EnmcElement,
    EnmcSubtype,
    EularCategory,
    EularItem,
    EularProbability,
    Interpretation,
    Juvenile,
    Keyword,
    Measure,
    Monitoring,
    OnsetBand,
    Parameter,
    PathologyFeature,
    Product,
    Recommendation,
    Review,
    Scale,
    Source,
    Step,
    Threshold,
    ValueConcept,
)
from imnm.vocabulary import Antibody, Drug

M = TypeVar("M", bound=BaseModel)

FILES = (
    "sources.toml",
    "onset_patterns.toml",
    "ck_reference.toml",
    "antibodies.toml",
    "pathology.toml",
    "enmc_2017.toml",
    "eular_acr_2017.toml",
    "code_sets.toml",
    "results.toml",
    "recommendations.toml",
    "parameters.toml",
    "regimens.toml",
    "response.toml",
    "labels.toml",
)

# Every id of these kinds must have a human label in labels.toml (the loader checks).
LABELLED: dict[str, tuple[str, ...]] = {
    "enmc_class": ("anti_hmgcr_imnm", "anti_srp_imnm", "seronegative_imnm", "not_imnm",
                   "insufficient_data"),
    "eular_subgroup": ("juvenile_dermatomyositis", "juvenile_myositis_other_than_jdm",
                       "dermatomyositis", "inclusion_body_myositis",
                       "polymyositis_including_imnm"),
    "differential": ("imnm", "dm", "ass", "ibm", "overlap", "nonspecific", "dystrophy"),
    "drug": tuple(d.value for d in Drug),
    "plan_line": ("first", "early", "wean", "second", "refractory"),
    "tier": ("test_for_antibodies", "review_dystrophy_label", "review_treatment",
             "not_assessable"),
    "route": ("oral", "iv", "sc", "im"),
}


@dataclass(frozen=True)
class Knowledge:
    """Everything imnm knows, loaded once. Rules receive this; they never open files."""

    sources: dict[str, Source]
    onset_bands: tuple[OnsetBand, ...]
    ck_bands: tuple[CkBand, ...]
    antibodies: dict[Antibody, AntibodyProfile]
    pathology: tuple[PathologyFeature, ...]
    enmc_subtypes: tuple[EnmcSubtype, ...]
    enmc_elements: dict[str, EnmcElement]
    eular_items: dict[str, EularItem]
    eular_categories: tuple[EularCategory, ...]
    eular_probability: EularProbability
    juvenile: Juvenile
    codes: tuple[CodeEntry, ...]
    keywords: tuple[Keyword, ...]
    recommendations: dict[str, Recommendation]
    parameters: dict[str, Parameter]
    doses: dict[str, DoseRule] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    monitoring: tuple[Monitoring, ...] = ()
    cumulative: tuple[Cumulative, ...] = ()
    reviews: tuple[Review, ...] = ()
    measures: dict[str, Measure] = field(default_factory=dict)
    scales: dict[str, Scale] = field(default_factory=dict)
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    products: tuple[Product, ...] = ()
    value_concepts: tuple[ValueConcept, ...] = ()
    answer_codes: tuple[AnswerCode, ...] = ()
    interpretations: tuple[Interpretation, ...] = ()
    answer_words: tuple[AnswerWord, ...] = ()
    results_version: str = ""
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    directory: str = ""
    ck_unit_factors: dict[str, float] = field(default_factory=dict)
    # each accepted spelling of a CK unit (lower case, quantities.ACTIVITY_SPELLINGS) -> the
    # factor to U/L, converted by pint when the knowledge is loaded from its files
    digest: str = ""  # of every knowledge file's bytes: two sites with the same digest
    # screened with the same code sets, thresholds and parameters
    _code_index: dict[tuple[str, str], CodeEntry] = field(default_factory=dict, repr=False)
    _drug_index: dict[str, str] = field(default_factory=dict, repr=False)
    _loinc_index: dict[str, tuple[str, str | None]] = field(default_factory=dict, repr=False)
    _coded: set[tuple[CodeSystem, str]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        for entry in self.codes:
            if entry.match == "exact":
                self._code_index[(entry.system.value, entry.code)] = entry
            if entry.system is CodeSystem.loinc:
                self._loinc_index[entry.code] = (entry.set, entry.concept)
            self._coded.add((entry.system, entry.code))
        self._drug_index.update((code, drug) for code, drug, _how in self.drug_codes())

    def drug_of_rxcui(self, rxcui: str) -> str | None:
        """The imnm drug concept of an RxNorm ingredient or of a product mapped to one."""
        return self._drug_index.get(rxcui)

    def label(self, kind: str, id_: str) -> str:
        """The human label of ``id_`` (a kind of labels.toml: enmc_class, drug, tier, ...);
        an id of no known kind reads with its underscores as spaces."""
        return self.labels.get(kind, {}).get(id_) or id_.replace("_", " ")

    def recommendation(self, rule_id: str) -> Recommendation:
        """The recommendation text and source for ``rule_id``."""
        return self.recommendations[rule_id]

    def parameter(self, name: str) -> float | bool:
        """The default value of parameter ``name``."""
        return self.parameters[name].value

    def lookup_code(self, system: str, code: str) -> CodeEntry | None:
        """The code-set entry for ``code`` (exact match first, then the longest prefix)."""
        exact = self._code_index.get((system, code))
        if exact is not None:
            return exact
        prefixes = [e for e in self.codes if e.match == "prefix" and e.system.value == system
                    and code.startswith(e.code)]
        return max(prefixes, key=lambda e: len(e.code), default=None)

    def loinc_index(self) -> dict[str, tuple[str, str | None]]:
        """LOINC code -> (code set, concept), built once with the knowledge."""
        return self._loinc_index

    def is_coded(self, system: CodeSystem, code: str) -> bool:
        """True when (system, code) is an entry of any code set."""
        return (system, code) in self._coded

    def codes_in(self, set_name: str, concept: str | None = None) -> list[CodeEntry]:
        """Every entry of a code set, optionally only one concept of it."""
        return [e for e in self.codes
                if e.set == set_name and (concept is None or e.concept == concept)]

    def drug_codes(self) -> list[tuple[str, str, str]]:
        """(RXCUI, imnm drug concept, how) for every ingredient of the ``drug`` code set and
        every product of results.toml mapped to one ("ingredient" or "product")."""
        ingredients = {c.code: c.concept for c in self.codes_in("drug") if c.concept}
        out = [(code, concept, "ingredient") for code, concept in ingredients.items()]
        out += [(p.rxcui, ingredients[p.ingredient], "product") for p in self.products
                if p.ingredient in ingredients]
        return out

    def drug_names(self) -> list[tuple[str, str]]:
        """(lower-case ingredient name, imnm drug concept) for the display-text fallback: each
        ingredient's display in code_sets.toml when it is a plain name."""
        out = set()
        for entry in self.codes_in("drug"):
            name = entry.display.lower()
            if entry.concept and all(ch.isalpha() or ch == " " for ch in name):
                out.add((name, entry.concept))
        return sorted(out)

    def answer_of(self, system: str, code: str) -> str | None:
        """'positive' or 'negative' for a coded answer (SNOMED CT or LOINC), else None."""
        entry = self._code_index.get((system, code))
        if entry is not None and entry.set == "answer":
            return entry.concept
        return next((a.answer for a in self.answer_codes
                     if a.system.value == system and a.code == code), None)

    def answer_of_text(self, text: str | None) -> str | None:
        """'positive' or 'negative' for a result's whole text (the stated fallback)."""
        wanted = " ".join((text or "").replace("\u200b", "").lower().split())
        return next((w.answer for w in self.answer_words if w.text == wanted), None)

    def answer_of_interpretation(self, code: str | None) -> str | None:
        """'positive' or 'negative' for an HL7 v3 ObservationInterpretation code."""
        return next((i.answer for i in self.interpretations if i.code == code), None)

    def cited_entries(self) -> Iterable[tuple[str, str, Cited]]:
        """(file, entry label, entry) for every cited entry, for integrity checks."""
        yield from (("onset_patterns.toml", b.id, b) for b in self.onset_bands)
        yield from (("ck_reference.toml", f"{b.sex} {b.min_age_years}", b) for b in self.ck_bands)
        yield from (("antibodies.toml", a.id.value, a) for a in self.antibodies.values())
        yield from (("pathology.toml", f"{p.subgroup}.{p.field}", p) for p in self.pathology)
        yield from (("enmc_2017.toml", s.id, s) for s in self.enmc_subtypes)
        yield from (("enmc_2017.toml", e.id, e) for e in self.enmc_elements.values())
        yield from (("eular_acr_2017.toml", i.id, i) for i in self.eular_items.values())
        yield from (("eular_acr_2017.toml", c.id, c) for c in self.eular_categories)
        yield ("eular_acr_2017.toml", "probability", self.eular_probability)
        yield ("eular_acr_2017.toml", "juvenile", self.juvenile)
        yield from (("code_sets.toml", f"{c.system.value} {c.code}", c) for c in self.codes)
        yield from (("results.toml", f"product {p.rxcui}", p) for p in self.products)
        yield from (("results.toml", f"value_concept {v.concept_id}", v)
                    for v in self.value_concepts)
        yield from (("results.toml", f"answer_code {a.code}", a) for a in self.answer_codes)
        yield from (("results.toml", f"interpretation {i.code}", i)
                    for i in self.interpretations)
        yield from (("results.toml", f"answer_word {w.text}", w) for w in self.answer_words)
        yield from (("code_sets.toml", f"keyword {k.text}", k) for k in self.keywords)
        yield from (("recommendations.toml", r.id, r) for r in self.recommendations.values())
        yield from (("parameters.toml", p.id, p) for p in self.parameters.values())
        yield from (("regimens.toml", d.id, d) for d in self.doses.values())
        yield from (("regimens.toml", s.id, s) for s in self.steps)
        yield from (("regimens.toml", f"monitoring {m.drug.value}", m) for m in self.monitoring)
        yield from (("regimens.toml", f"cumulative {c.drug.value}", c) for c in self.cumulative)
        yield from (("regimens.toml", r.id, r) for r in self.reviews)
        yield from (("response.toml", m.id, m) for m in self.measures.values())
        yield from (("response.toml", s.id, s) for s in self.scales.values())
        yield from (("response.toml", t.population, t) for t in self.thresholds.values())


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, entry: str, value: object, expected: str) -> None:
        self.problems.append(Problem(f"{file}: {entry}", shorten(value), expected))

    def entries(self, file: str, data: dict[str, Any], table: str, model: type[M],
                label: Callable[[dict[str, Any], int], str] | None = None) -> list[M]:
        raw = data.get(table, [])
        if not isinstance(raw, list):
            self.add(file, f"[[{table}]]", type(raw).__name__, "an array of tables")
            return []
        out: list[M] = []
        for index, item in enumerate(raw):
            name = label(item, index) if label else _label(item, table, index)
            try:
                out.append(model.model_validate(item))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    where = ".".join(str(p) for p in err["loc"]) or "(entry)"
                    self.add(file, f"{name} field {where}", err.get("input"), err["msg"])
        return out

    def single(self, file: str, data: dict[str, Any], table: str, model: type[M]) -> M | None:
        try:
            return model.model_validate(data.get(table))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"]) or "(table)"
                self.add(file, f"[{table}] field {where}", err.get("input"), err["msg"])
        return None


def _label(item: object, table: str, index: int) -> str:
    if isinstance(item, dict):
        for key in ("id", "code", "text"):
            if key in item:
                return f"{table} #{index + 1} ({item[key]})"
    return f"{table} #{index + 1}"


def read_files(directory: Path) -> dict[str, bytes | None]:
    """Every knowledge file's bytes by name (None where the file is absent), line endings
    made \\n so that a Windows checkout gives the same digest."""
    files: dict[str, bytes | None] = {}
    for name in FILES:
        try:
            files[name] = (directory / name).read_bytes().replace(b"\r\n", b"\n")
        except FileNotFoundError:
            files[name] = None
    return files


def digest_of(files: dict[str, bytes | None]) -> str:
    """SHA-256 over the files, by name, in order: two sites with the same digest screened
    with the same code sets, thresholds and parameters."""
    import hashlib

    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0")
        digest.update(b"(absent)" if data is None else data)
    return "sha256:" + digest.hexdigest()[:16]


def _parse(directory: Path, name: str, data: bytes | None, problems: _Collector
           ) -> dict[str, Any]:
    if data is None:
        problems.add(name, "(file)", str(directory / name), "the file to exist")
        return {}
    import tomllib  # only when the knowledge is read from its files, not from the cache

    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.add(name, "(file)", "(unparseable TOML)", f"valid TOML: {exc}")
    return {}


def _labels(raw: dict[str, Any], problems: _Collector) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    for kind, table in raw.items():
        if not isinstance(table, dict) or not all(
                isinstance(v, str) and v.strip() for v in table.values()):
            problems.add("labels.toml", kind, "(not a table of text)",
                         "a table mapping each id to its label")
            continue
        labels[kind] = dict(table)
    for kind, ids in LABELLED.items():
        for id_ in ids:
            if id_ not in labels.get(kind, {}):
                problems.add("labels.toml", f"{kind}.{id_}", "(missing)",
                             "a human label for every id of this kind")
    return labels


def _duplicates(file: str, ids: list[str], problems: _Collector) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            problems.add(file, item, item, "a unique id")
        seen.add(item)


def load_from(directory: Path, files: dict[str, bytes | None] | None = None) -> Knowledge:
    """Load and cross-check every knowledge file in ``directory`` (``files``: their bytes,
    when the caller has read them already). Never uses the cache."""
    if files is None:
        files = read_files(directory)
    c = _Collector()
    raw = {name: _parse(directory, name, files.get(name), c) for name in FILES}
    sources = c.entries("sources.toml", raw["sources.toml"], "source", Source)
    onset = c.entries("onset_patterns.toml", raw["onset_patterns.toml"], "pattern", OnsetBand)
    ck = c.entries("ck_reference.toml", raw["ck_reference.toml"], "band", CkBand)
    abs_ = c.entries("antibodies.toml", raw["antibodies.toml"], "antibody", AntibodyProfile)
    path = c.entries("pathology.toml", raw["pathology.toml"], "feature", PathologyFeature)
    enmc = raw["enmc_2017.toml"]
    subtypes = c.entries("enmc_2017.toml", enmc, "subtype", EnmcSubtype)
    elements = c.entries("enmc_2017.toml", enmc, "element", EnmcElement)
    eular = raw["eular_acr_2017.toml"]
    items = c.entries("eular_acr_2017.toml", eular, "item", EularItem)
    cats = c.entries("eular_acr_2017.toml", eular, "category", EularCategory)
    prob = c.single("eular_acr_2017.toml", eular, "probability", EularProbability)
    juvenile = c.single("eular_acr_2017.toml", eular, "juvenile", Juvenile)
    codes = c.entries("code_sets.toml", raw["code_sets.toml"], "code", CodeEntry)
    keywords = c.entries("code_sets.toml", raw["code_sets.toml"], "keyword", Keyword)
    res = raw["results.toml"]
    products = c.entries("results.toml", res, "product", Product)
    value_concepts = c.entries("results.toml", res, "value_concept", ValueConcept)
    answer_codes = c.entries("results.toml", res, "answer_code", AnswerCode)
    interpretations = c.entries("results.toml", res, "interpretation", Interpretation)
    answer_words = c.entries("results.toml", res, "answer_word", AnswerWord)
    recs = c.entries("recommendations.toml", raw["recommendations.toml"], "recommendation",
                     Recommendation)
    params = c.entries("parameters.toml", raw["parameters.toml"], "parameter", Parameter)
    reg = raw["regimens.toml"]
    doses = c.entries("regimens.toml", reg, "dose", DoseRule)
    steps = c.entries("regimens.toml", reg, "step", Step)
    monitoring = c.entries("regimens.toml", reg, "monitoring", Monitoring)
    cumulative = c.entries("regimens.toml", reg, "cumulative", Cumulative)
    reviews = c.entries("regimens.toml", reg, "review", Review)
    resp = raw["response.toml"]
    measures = c.entries("response.toml", resp, "measure", Measure)
    scales = c.entries("response.toml", resp, "scale", Scale)
    thresholds = c.entries("response.toml", resp, "threshold", Threshold)
    params += c.entries("response.toml", resp, "parameter", Parameter)

    for file, ids in [
        ("sources.toml", [s.id for s in sources]),
        ("antibodies.toml", [a.id.value for a in abs_]),
        ("enmc_2017.toml", [e.id for e in elements] + [s.id for s in subtypes]),
        ("eular_acr_2017.toml", [i.id for i in items]),
        ("recommendations.toml", [r.id for r in recs]),
        ("parameters.toml + response.toml", [p.id for p in params]),
        ("regimens.toml", [d.id for d in doses] + [s.id for s in steps]),
        ("response.toml", [m.id for m in measures] + [s.id for s in scales]),
        ("code_sets.toml", [f"{e.system.value} {e.code} {e.set}" for e in codes]),
        ("results.toml", [f"product {p.rxcui}" for p in products]
         + [f"value_concept {v.concept_id}" for v in value_concepts]
         + [f"interpretation {i.code}" for i in interpretations]
         + [f"answer_word {w.text}" for w in answer_words]),
    ]:
        _duplicates(file, ids, c)

    if prob is None or juvenile is None:
        raise KnowledgeError(c.problems)

    knowledge = Knowledge(
        sources={s.id: s for s in sources},
        onset_bands=tuple(onset),
        ck_bands=tuple(ck),
        antibodies={a.id: a for a in abs_},
        pathology=tuple(path),
        enmc_subtypes=tuple(subtypes),
        enmc_elements={e.id: e for e in elements},
        eular_items={i.id: i for i in items},
        eular_categories=tuple(sorted(cats, key=lambda x: x.min_score_with_biopsy)),
        eular_probability=prob,
        juvenile=juvenile,
        codes=tuple(codes),
        keywords=tuple(keywords),
        recommendations={r.id: r for r in recs},
        parameters={p.id: p for p in params},
        doses={d.id: d for d in doses},
        steps=tuple(steps),
        monitoring=tuple(monitoring),
        cumulative=tuple(cumulative),
        reviews=tuple(sorted(reviews, key=lambda r: r.weeks)),
        measures={m.id: m for m in measures},
        scales={s.id: s for s in scales},
        thresholds={t.population: t for t in thresholds},
        products=tuple(products),
        value_concepts=tuple(value_concepts),
        answer_codes=tuple(answer_codes),
        interpretations=tuple(interpretations),
        answer_words=tuple(answer_words),
        results_version=str(res.get("version", "")),
        labels=_labels(raw["labels.toml"], c),
        directory=str(directory),
        ck_unit_factors={spelling: quantities.convert(1.0, unit, "activity")
                         for spelling, unit in quantities.ACTIVITY_SPELLINGS.items()},
        digest=digest_of(files),
    )
    _cross_check(knowledge, c)
    if c.problems:
        raise KnowledgeError(c.problems)
    return knowledge


_BIOPSY_VALUES: dict[str, tuple[object, ...]] = {
    "mhc_ii": ("absent", "sarcolemmal", "sarcolemmal_and_sarcoplasmic"),
    "mac": ("absent", "sarcolemmal", "capillary", "sarcolemmal_and_capillary"),
    "p62": ("absent", "fine_granular", "coarse_aggregates"),
    "inflammation": ("none", "sparse", "prominent"),
}


def _cross_check(k: Knowledge, c: _Collector) -> None:
    for file, entry, cited in k.cited_entries():
        if cited.source not in k.sources:
            c.add(file, entry, cited.source, "a source id defined in sources.toml")
    for band in k.ck_bands:
        try:
            quantities.convert(band.upper_limit, band.unit, "activity")
        except ValueError as exc:
            c.add("ck_reference.toml", f"{band.sex} {band.min_age_years}", band.unit, str(exc))
    for code in k.codes:
        if code.match == "exact" and not is_valid(code.system, code.code):
            c.add("code_sets.toml", code.code, code.code, EXPECTED[code.system])
    ingredients = {c.code for c in k.codes_in("drug")}
    for product in k.products:
        if product.ingredient not in ingredients:
            c.add("results.toml", f"product {product.rxcui}", product.ingredient,
                  "the RXCUI of a drug entry in code_sets.toml")
        if product.rxcui in ingredients:
            c.add("results.toml", f"product {product.rxcui}", product.rxcui,
                  "a product, not an ingredient already in code_sets.toml")
    if not k.results_version:
        c.add("results.toml", "version", "(absent)",
              "the vocabulary releases the map was read from")
    for antibody in Antibody:
        if antibody not in k.antibodies:
            c.add("antibodies.toml", antibody.value, "(absent)", "an entry for every antibody")
    # That each feature names a field of the Biopsy model is checked by a test: the patient
    # model reads its limits from this knowledge base, so the loader does not import it.
    for feature in k.pathology:
        label = f"{feature.subgroup}.{feature.field}"
        allowed = _BIOPSY_VALUES.get(feature.field, (True, False))
        if feature.expected not in allowed:
            c.add("pathology.toml", label, feature.expected, f"one of {allowed}")
    for dose in k.doses.values():
        if dose.cap_source is not None and dose.cap_source not in k.sources:
            c.add("regimens.toml", dose.id, dose.cap_source, "a source id defined in sources.toml")
        if dose.amount_min > dose.amount_max:
            c.add("regimens.toml", dose.id, dose.amount_min, "amount_min <= amount_max")
    for step in k.steps:
        for dose_id in step.doses:
            if dose_id not in k.doses:
                c.add("regimens.toml", step.id, dose_id, "a dose id defined in the file")
    for measure in k.measures.values():
        if list(measure.bands) != sorted(measure.bands):
            c.add("response.toml", measure.id, measure.bands, "band edges in ascending order")
    for subtype in k.enmc_subtypes:
        for element in (*subtype.requires, *subtype.caveats):
            if element not in k.enmc_elements:
                c.add("enmc_2017.toml", subtype.id, element, "an element defined in the file")


@cache
def load_knowledge(directory: str | None = None) -> Knowledge:
    """The shipped knowledge base (or the one in ``directory``), loaded once per process.

    A knowledge base that loaded without a problem is kept in imnm's cache folder (see
    :mod:`imnm.knowledge._cache`), keyed by the files' bytes and imnm's code, so that the
    next process skips parsing and validating it; a base with a problem is never cached."""
    from imnm.knowledge import _cache

    path = Path(directory) if directory is not None else Path(__file__).parent / "data"
    files = read_files(path)
    key = _cache.key(path, files)
    cached = _cache.read(key)
    if cached is not None:
        return cached
    knowledge = load_from(path, files)
    _cache.write(key, knowledge)
    return knowledge
