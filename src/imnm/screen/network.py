"""A network of sites: each site's aggregate file, and their merge.

Row-level data never leaves a site. Each site runs ``imnm screen --aggregate FILE.csv``: the
children in scope and on the worklist per tier, sex and age band, with counts from 1 to
``SUPPRESS_BELOW - 1`` shown as ``<10``, then the coverage report's record counts. Every row
carries the imnm version, the knowledge base's digest and the screen date.

``imnm network merge A.csv B.csv ...`` adds the sites' cells. Suppression is never undone: a cell
that any site suppressed has no exact count in the network table, only its bounds (each
suppressed site counted as 1 and as 9) and the number of sites that suppressed it. Counts about
each site's vocabulary are not added: the table gives their smallest and largest. Files from
different imnm or knowledge versions are refused, since their counts do not mean the same.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SUPPRESS_BELOW = 10
"""Counts of children from 1 to SUPPRESS_BELOW - 1 are shown as "<10" (as Cumulus does); 0 is
shown, as it identifies nobody. A disclosure-control convention, not a clinical number."""

SUPPRESSED = f"<{SUPPRESS_BELOW}"

AGE_BAND_STARTS = (0, 5, 10, 15, 20)
"""Five-year age bands at the screen date (the last one open: the screen's upper age is a
parameter); a reporting convention, not a clinical number."""

SITE_COLUMNS = ("imnm_version", "knowledge_version", "as_of", "section", "tier", "sex",
                "age_band", "item", "count")
NETWORK_COLUMNS = ("imnm_version", "knowledge_version", "as_of", "sites", "section", "tier",
                   "sex", "age_band", "item", "count", "count_low", "count_high",
                   "sites_suppressed")
SEXES = ("female", "male", "unknown")
PER_SITE_PREFIX = "vocabulary."
"""Coverage items about a site's vocabulary (CONCEPT_ANCESTOR rows, code-set concepts found):
facts of each site, not counts to add; the network table gives their range, in section
coverage_per_site."""


class NetworkError(ValueError):
    """A site file cannot be merged (names the file and what is wrong)."""


def age_band(age: int | None) -> str:
    """The band of a whole-years age: "0-4" ... "20+", or "unknown"."""
    if age is None:
        return "unknown"
    start = max((s for s in AGE_BAND_STARTS if s <= age), default=AGE_BAND_STARTS[0])
    index = AGE_BAND_STARTS.index(start)
    if index + 1 < len(AGE_BAND_STARTS):
        return f"{start}-{AGE_BAND_STARTS[index + 1] - 1}"
    return f"{start}+"


def age_bands() -> list[str]:
    """Every band, in order, then "unknown"."""
    return [age_band(s) for s in AGE_BAND_STARTS] + ["unknown"]


def shown(count: int) -> str:
    """A count of children as a site may share it."""
    return str(count) if count == 0 or count >= SUPPRESS_BELOW else SUPPRESSED


@dataclass(frozen=True)
class Cell:
    """One count of an aggregate file, keyed by what it counts."""

    section: str
    tier: str
    sex: str
    age_band: str
    item: str

    @classmethod
    def of(cls, row: dict[str, str]) -> Cell:
        return cls(row["section"], row["tier"], row["sex"], row["age_band"], row["item"])


def site_rows(*, imnm_version: str, knowledge_version: str, as_of: str,
              population: dict[tuple[str, str], int],
              worklist: dict[tuple[str, str, str], int], tiers: Sequence[str],
              coverage: Iterable[tuple[str, int]]) -> list[dict[str, str]]:
    """A site's aggregate rows: every sex and band for the population and for every tier (so
    an absent cell is a 0, not a missing row), then the coverage counts."""
    about = {"imnm_version": imnm_version, "knowledge_version": knowledge_version,
             "as_of": as_of}
    out = []
    for sex in SEXES:
        for band in age_bands():
            out.append(about | {"section": "population", "tier": "", "sex": sex,
                                "age_band": band, "item": "children_in_scope",
                                "count": shown(population.get((sex, band), 0))})
    for tier in tiers:
        for sex in SEXES:
            for band in age_bands():
                out.append(about | {"section": "worklist", "tier": tier, "sex": sex,
                                    "age_band": band, "item": "children",
                                    "count": shown(worklist.get((tier, sex, band), 0))})
    for item, count in coverage:  # records, not children: never a small cell of people
        out.append(about | {"section": "coverage", "tier": "", "sex": "", "age_band": "",
                            "item": item, "count": str(count)})
    return out


def write_rows(path: Path, rows: list[dict[str, str]], columns: Sequence[str]) -> None:
    """Write rows as CSV, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def read_site(path: Path) -> list[dict[str, str]]:
    """A site's aggregate file, checked: the columns, one version, counts that are whole
    numbers or "<10" (and never a small count that should have been suppressed)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NetworkError(f"{path}: cannot be read as CSV ({type(exc).__name__})") from None
    if header != SITE_COLUMNS:
        raise NetworkError(f"{path}: got columns {', '.join(header) or '(none)'}; expected "
                           f"{', '.join(SITE_COLUMNS)} (the file imnm screen --aggregate "
                           "writes)")
    if not rows:
        raise NetworkError(f"{path}: no rows")
    for line, row in enumerate(rows, start=2):
        count = row["count"]
        if count == SUPPRESSED and row["section"] != "coverage":
            continue
        if not count.isdigit():
            raise NetworkError(f"{path}, line {line}: count: got {count!r}; expected a whole "
                               f"number or {SUPPRESSED!r}")
        if row["section"] != "coverage" and 0 < int(count) < SUPPRESS_BELOW:
            raise NetworkError(f"{path}, line {line}: count: got a count from 1 to "
                               f"{SUPPRESS_BELOW - 1} that should have been shown as "
                               f"{SUPPRESSED!r}; the file was not written by imnm screen, or "
                               "was edited")
    for column in ("imnm_version", "knowledge_version"):
        values = {r[column] for r in rows}
        if len(values) != 1:
            raise NetworkError(f"{path}: {column}: got {', '.join(sorted(values))} in one "
                               "file; expected one")
    return rows


def merge(paths: Sequence[Path]) -> list[dict[str, str]]:
    """The network table of the sites' files (see the module's notes)."""
    if len(paths) < 2:
        raise NetworkError("network merge: give two or more site files")
    sites = [(path, read_site(path)) for path in paths]
    for column, label in (("imnm_version", "imnm"), ("knowledge_version", "knowledge")):
        seen = {path.name: rows[0][column] for path, rows in sites}
        if len(set(seen.values())) > 1:
            raise NetworkError(
                f"network merge: the files come from different {label} versions ("
                + ", ".join(f"{name}: {version}" for name, version in seen.items())
                + "); their counts do not mean the same: screen every site with one version")
    keys: dict[Cell, None] = {}
    counts: list[dict[Cell, str]] = []
    for path, rows in sites:
        cells: dict[Cell, str] = {}
        for row in rows:
            cell = Cell.of(row)
            if cell in cells:
                raise NetworkError(f"{path}: {cell.section} {cell.tier} {cell.sex} "
                                   f"{cell.age_band} {cell.item}: appears twice")
            cells[cell] = row["count"]
            keys.setdefault(cell, None)
        counts.append(cells)
    dates = sorted({rows[0]["as_of"] for _, rows in sites})
    about = {"imnm_version": sites[0][1][0]["imnm_version"],
             "knowledge_version": sites[0][1][0]["knowledge_version"],
             "as_of": dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}",
             "sites": str(len(sites))}
    out = []
    for cell in keys:
        if cell.section == "coverage" and cell.item.startswith(PER_SITE_PREFIX):
            # each site's own vocabulary: not added; the smallest and the largest
            numbers = [int(c[cell]) for c in counts if cell in c]
            out.append(about | {
                "section": "coverage_per_site", "tier": cell.tier, "sex": cell.sex,
                "age_band": cell.age_band, "item": cell.item, "count": "",
                "count_low": str(min(numbers)), "count_high": str(max(numbers)),
                "sites_suppressed": "0"})
            continue
        values = [c.get(cell, "0") for c in counts]  # a cell a site lacks counts nothing
        known = sum(int(v) for v in values if v != SUPPRESSED)
        hidden = sum(1 for v in values if v == SUPPRESSED)
        out.append(about | {
            "section": cell.section, "tier": cell.tier, "sex": cell.sex,
            "age_band": cell.age_band, "item": cell.item,
            "count": "" if hidden else str(known),
            "count_low": str(known + hidden), "count_high": str(known + hidden * (
                SUPPRESS_BELOW - 1)),
            "sites_suppressed": str(hidden)})
    return out
