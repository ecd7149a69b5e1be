"""A cache of the validated knowledge base, so that a cold start does not parse the TOML and
build the knowledge models' validators again (about 40 ms of a 0.3 s ``imnm assess``).

What is cached is the :class:`~imnm.knowledge.Knowledge` object a successful load returned,
pickled. Its key is a SHA-256 over everything that could make a new load differ:

- the bytes of every knowledge file (the same bytes the loader reads and digests);
- the folder they were read from (the object records it);
- the source of the modules whose classes or results the object holds (the models, the
  loader, the vocabulary and code-system enums, the unit conversions), so that a code change
  is never served an old object;
- pint's unit definitions (the CK unit factors are pint's);
- the versions of imnm, pydantic and Python.

A file is used only when its name is that key, it belongs to the current user and nobody else
can write it (the folder and files are created private). Anything unreadable, foreign or
stale is ignored, and the knowledge is loaded from its files as if there were no cache. A
cache that cannot be written (a read-only home, a full disk) is skipped the same way: the
cache only ever saves time, it never changes what is loaded.

The folder is ``IMNM_CACHE_DIR`` when set (an empty value turns the cache off), otherwise
the platform's user cache folder for imnm (``~/.cache/imnm`` on Linux), the same place pint
keeps its definitions cache.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imnm.knowledge._loader import Knowledge

ENV = "IMNM_CACHE_DIR"

# Modules whose classes a pickled Knowledge refers to: a change to any of them changes the key.
_CODE_MODULES = ("imnm.knowledge._models", "imnm.knowledge._loader", "imnm.vocabulary",
                 "imnm.codes", "imnm.quantities")


def folder() -> Path | None:
    """Where the cache lives, or None when ``IMNM_CACHE_DIR`` is set empty."""
    configured = os.environ.get(ENV)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    import platformdirs

    return Path(platformdirs.user_cache_dir("imnm", appauthor=False))


def key(directory: Path, files: dict[str, bytes | None]) -> str:
    """The cache key for the knowledge in ``directory`` whose files hold ``files``."""
    import pydantic

    from imnm import __version__

    h = hashlib.sha256()
    for part in (__version__, pydantic.VERSION, sys.version, str(directory.resolve())):
        h.update(part.encode() + b"\0")
    h.update(_pint_definitions())
    for name, data in files.items():
        h.update(name.encode() + b"\0" + (b"(absent)" if data is None else data) + b"\0")
    for module in _CODE_MODULES:
        origin = sys.modules[module].__file__ if module in sys.modules else None
        h.update(module.encode() + b"\0" + (Path(origin).read_bytes() if origin else b"?"))
    return h.hexdigest()


def _pint_definitions() -> bytes:
    """pint's unit definitions file, which the CK unit factors come from, found without
    importing pint (that is what the cache saves)."""
    from importlib.util import find_spec

    spec = find_spec("pint")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            return (Path(folder) / "default_en.txt").read_bytes()
        except OSError:
            continue
    return b"(pint definitions not found)"


def _path(key_: str) -> Path | None:
    base = folder()
    return None if base is None else base / f"knowledge-{key_[:32]}.pickle"


def _trusted(path: Path) -> bool:
    """The file belongs to this user and only this user can write it (POSIX); elsewhere the
    user cache folder's own permissions protect it."""
    if not hasattr(os, "getuid"):
        return True
    info = path.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def read(key_: str) -> Knowledge | None:
    """The cached knowledge for ``key_``, or None (absent, foreign, unreadable or stale)."""
    from imnm.knowledge._loader import Knowledge

    path = _path(key_)
    if path is None:
        return None
    try:
        if not _trusted(path):
            return None
        with path.open("rb") as handle:
            # Only a file this user owns and only this user can write (checked above), named
            # by the key: no more trusted than the code in the same account's venv.
            stored_key, knowledge = pickle.load(handle)  # noqa: S301
    except Exception:  # any failure means: load from the files instead
        return None
    if stored_key != key_ or not isinstance(knowledge, Knowledge):
        return None
    return knowledge


def write(key_: str, knowledge: Knowledge) -> None:
    """Keep ``knowledge`` under ``key_``, atomically (a reader sees the old file or the new
    one, never half of one); a folder that cannot be written is skipped without a word."""
    path = _path(key_)
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".knowledge-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump((key_, knowledge), handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, pickle.PicklingError):
        return
