"""A folder of FHIR Bundles (one per patient, as EHR exports and Synthea write them) read as
bulk NDJSON: each resource goes to ``<Type>.ndjson`` in a temporary folder that lives as long
as the screen runs. A folder that already holds bulk NDJSON is used as it is.
"""

from __future__ import annotations

import glob
import gzip
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from imnm.fhir import resources_of
from imnm.jsonio import depth_problem
from imnm.screen.engines import InputUnusable, _fhir_files


def _bundle_files(directory: Path) -> list[str]:
    found: list[str] = []
    for pattern in ("*.json", "*.json.gz"):
        found += glob.glob(str(directory / pattern))
    return sorted(found)


def _load(path: str) -> Any:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


@contextmanager
def bundles_as_ndjson(directory: Path, skipped: list[str] | None = None) -> Iterator[Path]:
    """``directory`` itself when it holds bulk NDJSON; else a temporary NDJSON folder made
    from its Bundles (an unreadable file raises InputUnusable naming it). The names of JSON
    files that are not Bundles are added to ``skipped``, to be said with the result."""
    if _fhir_files(directory, "Patient") or not _bundle_files(directory):
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="imnm-bundles-") as tmp:
        handles: dict[str, IO[str]] = {}
        try:
            for path in _bundle_files(directory):
                try:
                    bundle = _load(path)
                except (OSError, ValueError, EOFError, RecursionError) as exc:
                    raise InputUnusable(f"--fhir: {Path(path).name}: not readable JSON "
                                        f"({type(exc).__name__})") from None
                too_deep = depth_problem(bundle)
                if too_deep is not None:
                    raise InputUnusable(f"--fhir: {Path(path).name}: {too_deep.expected}")
                if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                    if skipped is not None:
                        skipped.append(Path(path).name)
                    continue
                for resource in resources_of(bundle):
                    kind = resource.get("resourceType")
                    if not isinstance(kind, str) or not kind.isalpha():
                        if skipped is not None:
                            skipped.append(f"{Path(path).name} (an entry without a resource "
                                           "type)")
                        continue
                    if kind not in handles:
                        handles[kind] = open(Path(tmp) / f"{kind}.ndjson", "w",
                                             encoding="utf-8")
                    handles[kind].write(json.dumps(resource) + "\n")
        finally:
            for handle in handles.values():
                handle.close()
        yield Path(tmp)
