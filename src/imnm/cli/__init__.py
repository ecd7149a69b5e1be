"""The ``imnm`` command, one module per group of commands:

- :mod:`imnm.cli.child`: assess, plan, dose, course, schema, knowledge (one child; the sources);
- :mod:`imnm.cli.evidence`: evidence summary, compare, add, add-case;
- :mod:`imnm.cli.screen`: screen, synth (populations);
- :mod:`imnm.cli.service`: serve, registry init/add-user, demo.

Exit codes: 0 success; 2 bad input (every problem printed to stderr, one per line, naming
the file, the field, the value and what was expected; never a traceback).

The command modules do not use ``from __future__ import annotations``. Typer reads every
command's annotations on every start: as strings it evaluated about 330 of them, twice, each
time (20 ms of a 0.3 s cold start); evaluated once at import they cost a few ms.
"""

from __future__ import annotations

import os
import sys
import types


def _no_pydantic_plugins() -> None:
    """With pydantic's plugins turned off, stand in for its plugin loader.

    The loader returns no plugins when PYDANTIC_DISABLE_PLUGINS says all are off, but its first
    line imports importlib.metadata (and the email package behind it): about 15 ms of a 0.3 s
    cold start, spent to find nothing. pydantic takes one name from it, ``get_plugins``, in
    ``pydantic.plugin._schema_validator``. With any other setting, or once pydantic has loaded
    its own loader, nothing is replaced. A test checks both, so a pydantic release that moves
    the loader shows up in CI.
    """
    name = "pydantic.plugin._loader"
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in ("__all__", "1", "true") or (
            name in sys.modules):
        return
    loader = types.ModuleType(name, "imnm's stand-in: pydantic plugins are off")
    loader.get_plugins = tuple  # type: ignore[attr-defined]  # returns (), no plugins
    sys.modules[name] = loader


# pydantic looks for plugins among every installed distribution's entry points when the first
# model is built: about 20 ms of a 0.3 s cold start, for plugins imnm does not use. Set
# PYDANTIC_DISABLE_PLUGINS yourself (an empty value included) to have them looked for.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
_no_pydantic_plugins()

# After the two settings above, which must come before pydantic builds a model.
from imnm.cli import child, evidence, screen, service  # noqa: E402, F401 - they register commands
from imnm.cli._common import EXIT_BAD_INPUT, InputError, app, report  # noqa: E402


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except InputError as exc:  # pragma: no cover - every command handles its own input
        report("(input)", exc.problems)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()


__all__ = ["app", "main"]
