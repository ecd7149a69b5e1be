"""The CDS Hooks call's fast lane: a well-formed JSON POST to one route, served straight from
ASGI (a plain middleware inside :class:`~imnm.service.guard.Guard`), without FastAPI's
per-request machinery.

patient-view fires on every chart an EHR opens, so the hook is the service's hot path. FastAPI's
middleware stack, routing and dependency solving cost about a fifth of a hook call's CPU
(measured in process, interleaved: per call, median 2.11 against 1.72 ms and 1.93 against
1.51 ms). The lane does only what that machinery does for a well-formed call: it parses the
JSON body, validates it as the route's model and calls the route's own endpoint, whose
:class:`~imnm.errors.InputError` becomes the same 422 as the app's handler gives.

Anything else goes on, body and all, to the app, whose route answers it exactly as before: a
body that is empty, not JSON, not of a JSON content type or not the model gets FastAPI's own
422, 400 or whatever it gives. The route stays declared in the app (the OpenAPI document
describes it, and it serves those calls), and both paths run the same endpoint.

The body is parsed with orjson, and whatever orjson refuses goes on to the app, which parses
it with the standard library as before: NaN and Infinity, a lone surrogate escape, a
byte-order mark, nesting deeper than orjson's 1,024 levels. One difference remains: an integer
beyond 64 bits becomes a float (the standard library keeps it whole); no FHIR integer is that
large, and the value is refused either way, by its type or its range. Measured with callgrind
(instructions, which the machine's changing speed does not move) on the benchmark's call, the
lane parsing with orjson and the light check without its walk of the whole tree for depth
(see :func:`imnm.fhir.common._validate_read`) took 4.17 million instructions a call against
4.82 million.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imnm.errors import InputError
from imnm.service.guard import ASGIApp, Receive, Scope, Send, replay

Endpoint = Callable[[Request, Any], Awaitable[Response]]


def _json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when the request says its body is JSON (application/json or application/*+json),
    as FastAPI reads it."""
    for key, value in headers:
        if key.lower() == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/")
                                                   and kind.endswith(b"+json"))
    return False


class FastLane:
    """Serve well-formed POSTs to ``path`` by calling ``endpoint(request, model)``; pass every
    other request on to ``app`` (see the module's docstring). ``problems`` turns an
    :class:`InputError` into the JSON body the app's handler gives it."""

    def __init__(self, app: ASGIApp, *, path: str, model: type[BaseModel],
                 endpoint: Endpoint, problems: Callable[[InputError], Any]) -> None:
        self.app = app
        self.path = path
        self.model = model
        self.endpoint = endpoint
        self.problems = problems

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path
                or not _json_content(scope.get("headers", []))):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:
            return  # the client went away
        try:
            call = self.model.model_validate(orjson.loads(body)) if body else None
        except (ValueError, ValidationError):  # (orjson's JSONDecodeError is a ValueError)
            call = None
        if call is None:  # FastAPI's route says what is wrong, in its own words
            await self.app(scope, replay(body, receive), send)
            return
        request = Request(scope, replay(body, receive))
        try:
            response = await self.endpoint(request, call)
        except InputError as exc:
            response = JSONResponse(status_code=422, content={"problems": self.problems(exc)})
        await response(scope, receive, send)


async def _read(receive: Receive) -> bytes | None:
    """The whole body (the Guard has capped it), or None if the client disconnected."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
