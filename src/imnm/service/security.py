"""CDS Hooks client authentication: a JWT bearer token from an allow-listed issuer.

As the CDS Hooks 2.0 specification asks: the token's header names ``alg`` (RS384 or ES384 only;
``none`` and HMAC are refused) and ``kid``; the key is looked up in the issuer's JWKS; ``aud``
must be the exact URL called (built from the service's configured base URL, never from the
request's Host header); ``exp``, ``iat`` and ``jti`` are required; a ``jti`` seen before is a
replay and refused. Any failure is a bare 401: the reason goes to the server log as a category
only, never with the token or patient data.

A JWKS given by URL or file is cached for :data:`JWKS_TTL_SECONDS`, fetched again once when a
token names a ``kid`` it does not hold (key rotation), and never fetched more often than every
:data:`JWKS_MIN_REFETCH_SECONDS` per issuer, whatever tokens arrive. When an issuer's keys
cannot be had at all, :class:`KeysUnavailable` (the service answers 503).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from jwt import PyJWK

LOG = logging.getLogger("imnm.service.security")
ALLOWED_ALGORITHMS = ("RS384", "ES384")
LEEWAY_SECONDS = 60  # clock skew tolerated between client and service (heuristic)
MAX_TOKEN_AGE_SECONDS = 600  # iat older than this is refused (the spec suggests short-lived)
JWKS_TTL_SECONDS = 3600.0
"""How long fetched keys are used before they are fetched again (operational; an issuer's
Cache-Control is not consulted)."""
JWKS_MIN_REFETCH_SECONDS = 30.0
"""At most one fetch per issuer in this interval: an unknown kid or an unreachable issuer can
not make the service hammer the issuer (operational)."""


class Unauthorized(Exception):
    """The request is not authenticated. ``reason`` is a category for the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ReplayCache:
    """``jti`` values seen, kept until their token expires (bounded)."""

    capacity: int = 100_000
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_and_add(self, key: str, expires_at: float) -> bool:
        """False if ``key`` was seen and has not expired; records it otherwise."""
        now = time.time()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = expires_at + LEEWAY_SECONDS
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return True


class KeysUnavailable(Exception):
    """No key of the issuer could be had (unreachable JWKS URL, unreadable JWKS)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SharedReplayCache(ReplayCache):
    """``jti`` values seen by any of several worker processes: a SQLite file they share (the
    first to insert a ``jti`` wins; an expired one may be used again after it expires)."""

    def __init__(self, path: str) -> None:
        from imnm.service.shared import SharedTable

        super().__init__()
        self._table = SharedTable(path, "seen")

    def check_and_add(self, key: str, expires_at: float) -> bool:
        return self._table.insert(key, expires_at + LEEWAY_SECONDS)


JwksFetcher = Callable[[str], Mapping[str, Any]]


def _fetch_jwks(url: str) -> Mapping[str, Any]:  # pragma: no cover - network
    import httpx

    response = httpx.get(url, timeout=5.0)
    response.raise_for_status()
    data: Mapping[str, Any] = response.json()
    return data


def _keys_of(jwks: object) -> list[Mapping[str, Any]]:
    """The keys of a JWKS document; ValueError if it is not one."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list) or not all(isinstance(k, Mapping) for k in keys):
        raise ValueError("not a JWKS: expected an object with a list of keys")
    return keys


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _unverified(token: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """A token's header and claims, read without checking anything, only to choose the key
    that verifies it: PyJWT then reads the token again, strictly, and checks it. (Its own
    unverified reads validate the base64 character by character in Python, about 65 µs per
    read; two of them were half the cost of verifying a token.)"""
    try:
        head, body, _signature = token.split(".")
        header, claims = _segment(head), _segment(body)
    except (ValueError, TypeError, RecursionError):  # binascii.Error, JSON and UTF-8 errors too
        raise Unauthorized("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict) or not all(
            isinstance(header.get(name, ""), str) for name in ("alg", "kid")):
        raise Unauthorized("malformed token")
    return header, claims


@lru_cache(maxsize=64)
def _public_key(jwk: str, algorithm: str) -> Any:
    """The key object of a JWK (JSON text), built once: building it took about 20 µs a call."""
    return PyJWK(json.loads(jwk), algorithm=algorithm).key


@dataclass
class _CachedKeys:
    keys: list[Mapping[str, Any]] | None = None
    fetched_at: float = float("-inf")
    tried_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class TokenVerifier:
    """Verifies CDS Hooks bearer tokens.

    ``issuers`` maps each allowed ``iss`` to its JWKS: a dict (``{"keys": [...]}``), a path
    to a JSON file, or an https URL fetched with ``fetch``.
    """

    issuers: Mapping[str, Any]
    fetch: JwksFetcher = _fetch_jwks
    replay: ReplayCache = field(default_factory=ReplayCache)
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, _CachedKeys] = field(default_factory=dict)

    def _load(self, source: str) -> list[Mapping[str, Any]]:
        if source.startswith("https://") or source.startswith("http://"):
            return _keys_of(self.fetch(source))
        with open(source, encoding="utf-8") as handle:
            return _keys_of(json.load(handle))

    def _keys(self, issuer: str, kid: str) -> list[Mapping[str, Any]]:
        """The issuer's keys: cached, refreshed when stale or when ``kid`` is unknown, at most
        once per :data:`JWKS_MIN_REFETCH_SECONDS`."""
        source = self.issuers[issuer]
        if isinstance(source, Mapping):
            return _keys_of(source)
        entry = self._cache.setdefault(issuer, _CachedKeys())
        with entry.lock:
            now = self.clock()
            fresh = entry.keys is not None and now - entry.fetched_at < JWKS_TTL_SECONDS
            known = entry.keys is not None and any(k.get("kid") == kid for k in entry.keys)
            if not (fresh and known) and now - entry.tried_at >= JWKS_MIN_REFETCH_SECONDS:
                entry.tried_at = now
                try:
                    entry.keys, entry.fetched_at = self._load(str(source)), now
                except Exception as exc:
                    LOG.warning("could not fetch the keys of issuer %s: %s", issuer,
                                type(exc).__name__)
            if entry.keys is None:
                raise KeysUnavailable("issuer keys unavailable")
            return entry.keys  # stale keys serve until a fetch succeeds

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, or :class:`Unauthorized`."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("no bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        header, unverified = _unverified(token)
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise Unauthorized("algorithm not allowed")
        kid = header.get("kid")
        if not kid:
            raise Unauthorized("no kid")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.issuers:
            raise Unauthorized("issuer not allowed")
        keys = [k for k in self._keys(issuer, str(kid)) if k.get("kid") == kid]
        if not keys:
            raise Unauthorized("unknown kid")
        try:
            key = _public_key(json.dumps(keys[0], sort_keys=True), header["alg"])
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[header["alg"]], audience=audience,
                issuer=issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("wrong audience") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        if claims["iat"] < time.time() - MAX_TOKEN_AGE_SECONDS:
            raise Unauthorized("token too old")
        if not isinstance(claims["jti"], str) or not claims["jti"].strip():
            raise Unauthorized("empty jti")
        if not self.replay.check_and_add(f"{issuer}|{claims['jti']}", float(claims["exp"])):
            raise Unauthorized("replayed jti")
        return claims
