"""The service, the registry and the demo."""

import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from imnm.cli._common import (
    EXIT_BAD_INPUT,
    app,
)

EVENT_LOOP = "asyncio"
"""The event loop ``imnm serve`` asks uvicorn for, whatever else is installed. uvicorn picks
uvloop when it is installed (``uvicorn[standard]`` installs it). Measured on this project's
2-core machine with wrk at 50 keep-alive clients and 2 ms of work per call, uvloop starved a
few connections: p99 1.28 s against p50 112 ms, where asyncio gave p99 123 ms against p50 117
ms at the same throughput."""

HTTP_PARSER = "httptools"
"""The HTTP/1.1 parser ``imnm serve`` asks uvicorn for: httptools (the C parser of
``uvicorn[standard]``, a dependency of imnm) rather than h11, written in Python. Measured on
the 2-core machine with wrk at 50 keep-alive clients, interleaved: a bare ASGI app on one
worker answered 7,600 to 11,300 calls/s with httptools against 2,800 to 3,500 with h11 (3
runs each), and a patient-view call took a median 2.0 against 2.5 ms of the worker's CPU
(8 interleaved pairs of runs, httptools lower in 6)."""


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    issuer: Annotated[list[str] | None, typer.Option(
        "--issuer", help="Allowed token issuer as ISS=JWKS (a JWKS URL or file); repeatable.")
    ] = None,
    insecure_development: Annotated[bool, typer.Option(
        "--insecure-development", help="Run WITHOUT authentication (local development only).")
    ] = False,
    registry: Annotated[str | None, typer.Option(
        "--registry", help="Registry database URL: serve the web pages (sqlite:///file.db or "
        "postgresql+psycopg://...).")] = None,
    web_secret: Annotated[str | None, typer.Option(
        "--web-secret", envvar="IMNM_WEB_SECRET",
        help="Secret that signs report links (default: random at each start).")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", envvar="IMNM_BASE_URL",
        help="The URL clients call, e.g. https://imnm.example.org behind a TLS proxy (tokens' "
        "audience, card links, the clinic's origin). Default: http://HOST:PORT.")] = None,
    max_body_mb: Annotated[float, typer.Option(
        "--max-body-mb", min=0.001, help="Largest request body accepted, in MiB.")] = 16.0,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64, help="Worker processes (one per core is a good start); "
        "the supervisor hands each new connection to the next worker in turn, and they share "
        "the replay cache and the card-link secret.")] = 1,
) -> None:
    """Serve the REST API (/assess, /knowledge, /docs), the CDS Hooks service and, with
    --registry, the clinic's web pages."""
    import uvicorn

    from imnm.service.app import create_app, settle_for_serving
    from imnm.service.logs import serve_log_config
    from imnm.service.security import TokenVerifier

    issuers = {}
    for item in issuer or []:
        name, sep, jwks = item.partition("=")
        if not sep or not name or not jwks:
            typer.echo(f"imnm serve: --issuer: got {item!r}; expected ISS=JWKS", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        issuers[name] = jwks
    if not issuers and not insecure_development:
        typer.echo("imnm serve: give at least one --issuer ISS=JWKS, or --insecure-development "
                   "to run without authentication", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if insecure_development:
        typer.echo("WARNING: imnm serve in development mode: NO AUTHENTICATION. "
                   "Do not expose this port.", err=True)
    store = None
    if registry is not None:
        from imnm.registry import Registry, schema_problem

        problem = schema_problem(registry)
        if problem:
            typer.echo(f"imnm serve: --registry: {problem}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        store = Registry(registry)
    base = (base_url or f"http://{host}:{port}").rstrip("/")
    try:
        app_ = create_app(TokenVerifier(issuers) if issuers else None,
                          development=insecure_development, registry=store,
                          link_secret=web_secret, base_url=base,
                          max_body_bytes=int(max_body_mb * 1024 * 1024))
    except ValueError as exc:
        typer.echo(f"imnm serve: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(f"imnm service on http://{host}:{port}, called as {base} "
               f"(API docs at /docs); {workers} worker(s)", err=True)
    log_config = serve_log_config()  # access lines without query strings (report links)
    if workers == 1:
        settle_for_serving()
        uvicorn.run(app_, host=host, port=port, log_level="info", log_config=log_config,
                    proxy_headers=True, loop=EVENT_LOOP,
                    http=HTTP_PARSER)
        return
    _serve_workers(workers, host, port, log_config, {
        "issuers": issuers, "development": insecure_development, "registry": registry,
        "base_url": base, "max_body_bytes": int(max_body_mb * 1024 * 1024),
        "link_secret": web_secret or secrets.token_hex(32)})


def _serve_workers(workers: int, host: str, port: int, log_config: dict[str, Any],
                   config: dict[str, Any]) -> None:
    """Several uvicorn workers on one port, the supervisor dealing each connection to the next
    (:mod:`imnm.service.workers`: why, and TCP_NODELAY)."""
    import json
    import os
    import tempfile

    import uvicorn

    from imnm.service.app import SERVE_ENVIRONMENT
    from imnm.service.workers import supervisor

    with tempfile.TemporaryDirectory(prefix="imnm-serve-") as folder:
        os.environ[SERVE_ENVIRONMENT] = json.dumps(
            config | {"replay_path": os.path.join(folder, "replay.db"),
                      "reports_folder": folder, "workers": workers})
        uconfig = uvicorn.Config("imnm.service.app:app_from_environment", factory=True,
                                 host=host, port=port, workers=workers, log_level="info",
                                 log_config=log_config, proxy_headers=True, loop=EVENT_LOOP,
                                 http=HTTP_PARSER)
        try:
            supervised = supervisor(uconfig, host, port)
        except OSError as exc:
            typer.echo(f"imnm serve: --port {port}: {exc.strerror}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        supervised.run()


registry_app = typer.Typer(help="The registry of patients, visits and assessments.",
                           no_args_is_help=True)
app.add_typer(registry_app, name="registry")
RegistryUrl = Annotated[str, typer.Option("--url", help="Database URL (sqlite:///file.db or "
                                          "postgresql+psycopg://user@host/db).")]


@registry_app.command("init")
def registry_init(url: RegistryUrl) -> None:
    """Create or upgrade the registry schema (Alembic migrations)."""
    from imnm.registry import migrate

    migrate(url)
    typer.echo(f"registry schema up to date at {url.split('@')[-1]}")


@registry_app.command("add-user")
def registry_add_user(
    url: RegistryUrl,
    username: Annotated[str, typer.Argument(show_default=False)],
    role: Annotated[str, typer.Option("--role", help="clinician or researcher")] = "clinician",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input "
        "(for scripts); without it, imnm asks for it twice at the terminal.")] = False,
) -> None:
    """Add a user who logs in to the web pages."""
    from imnm.registry import Registry, RegistryError, schema_problem

    problem = schema_problem(url)
    if problem:
        typer.echo(f"imnm registry add-user: {problem}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        typer.echo("imnm registry add-user: no terminal to ask for the password; give "
                   "--password-stdin and write it on standard input", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    registry = Registry(url)
    try:
        registry.create_user(username, password, role)  # type: ignore[arg-type]
    except RegistryError as exc:
        typer.echo(f"imnm registry add-user: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        registry.close()
    typer.echo(f"user {username} added ({role})")


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--folder", help="Where to put the demo files.")
                      ] = Path("imnm-demo"),
    patients: Annotated[int, typer.Option("--patients", help="Synthetic population size.")
                        ] = 20_000,
    examples: Annotated[Path, typer.Option("--examples", help="Folder of patient files.")
                        ] = Path("examples"),
) -> None:
    """The main job end to end on the embedded default: a synthetic population screened on
    DuckDB, the first 2025 case-series patient assessed, and a registry with the examples,
    ending with how to open the web page."""
    import secrets as secrets_

    from imnm.assessment import assess as run
    from imnm.knowledge import load_knowledge
    from imnm.patient import load_patient
    from imnm.registry import Registry, migrate
    from imnm.screen import synth
    from imnm.screen.run import run_screen

    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "omop.duckdb"
    synth.write_omop(synth.population(patients, 1), database)
    result = run_screen("omop", str(database), as_of=synth.AS_OF)
    kb_ = load_knowledge()
    counts = ", ".join(f"{kb_.label('tier', k)} {v}" for k, v in result.counts().items())
    typer.echo(f"1. screened {result.population:,} synthetic children on DuckDB: {counts}")
    example_files = sorted(examples.glob("*.json")) if examples.is_dir() else []
    case = examples / "case-series-2025-patient-1.json"
    if case.exists():
        assessed = run(load_patient(case.read_text(encoding="utf-8")))
        label = kb_.label("enmc_class", assessed.classification.enmc_2017.cls)
        review = "yes" if assessed.suspicion.review_dystrophy_label else "no"
        typer.echo(f"2. case-series patient 1: ENMC 2017 {label}; review the dystrophy label: "
                   f"{review}")
    url = f"sqlite:///{(folder / 'registry.db').resolve()}"
    migrate(url)
    store = Registry(url)
    password = secrets_.token_urlsafe(9)
    username = f"clinician-{secrets_.token_hex(2)}"
    store.create_user(username, password, "clinician")
    account = store.login(username, password)
    assert account is not None  # noqa: S101 - created just above
    for path in example_files:
        store.save_patient(load_patient(path.read_text(encoding="utf-8")), account)
    typer.echo(f"3. registry with {len(example_files)} example children at {url}")
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "imnm"
    program = sys.argv[0] if program == "imnm" and "/" in sys.argv[0] else "imnm"
    typer.echo("\nOpen the clinic's page:\n"
               f"  {program} serve --insecure-development --registry {url}\n"
               f"  then browse http://127.0.0.1:8000/ and log in as {username} / {password}")
