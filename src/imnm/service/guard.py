"""The service's front door, in front of every route (a plain ASGI middleware):

1. A request to a route that needs a token is authenticated from its headers alone, before
   one byte of its body is read: without a valid token it gets 401, whatever its body.
2. A request body larger than ``max_body_bytes`` gets 413 (from Content-Length at once, else
   counted as it arrives); nothing larger is ever held in memory.
3. Every response carries the browser-hardening headers; pages that show a child also carry
   ``Cache-Control: no-store``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from imnm.service.security import KeysUnavailable, Unauthorized

LOG = logging.getLogger("imnm.service")
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body accepted (16 MiB; operational). A CDS Hooks prefetch for a child with
years of laboratory results is a few MiB; set ``--max-body-mb`` for larger."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HARDENING = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
# The clinic's pages and reports: no script from anywhere, no framing, forms only to ourselves.
PAGE_POLICY = (b"default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith(("/patients", "/login", "/logout", "/reports"))


class Guard:
    """See the module's docstring. ``authenticate(path, headers)`` raises Unauthorized or
    KeysUnavailable, and returns the claims to keep in ``scope["state"]["claims"]``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int,
                 needs_token: Callable[[str, str], bool],
                 authenticate: Callable[[str, dict[str, str]], dict[str, Any]] | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.needs_token = needs_token
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        send = self._hardened(send, _is_page(path))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.authenticate is not None and self.needs_token(scope["method"], path):
            try:
                claims = self.authenticate(path, headers)
            except Unauthorized as exc:
                client = (scope.get("client") or ("?",))[0]
                LOG.warning("refused a request to %s from %s: %s", path, client, exc.reason)
                await _respond(send, 401, b"", [(b"www-authenticate", b"Bearer")])
                return
            except KeysUnavailable:
                await _respond(send, 503, json.dumps({"problems": [{
                    "field": "(issuer keys)", "expected": "the token issuer's JWKS, which "
                    "could not be fetched; try again later"}]}).encode(),
                    [(b"retry-after", b"30"), (b"content-type", b"application/json")])
                return
            scope.setdefault("state", {})["claims"] = claims
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
            more = message.get("more_body", False)
        await self.app(scope, replay(bytes(body), receive), send)

    async def _too_large(self, send: Send) -> None:
        await _respond(send, 413, json.dumps({"problems": [{
            "field": "(request body)", "expected": f"at most {self.max_body_bytes} bytes"}]}
        ).encode(), [(b"content-type", b"application/json")])

    @staticmethod
    def _hardened(send: Send, page: bool) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = list(HARDENING)
                if page:
                    extra += [(b"content-security-policy", PAGE_POLICY),
                              (b"cache-control", b"no-store")]
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the whole ``body`` (already read) as one message, then hands
    on to ``receive`` (for the disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _respond(send: Send, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
