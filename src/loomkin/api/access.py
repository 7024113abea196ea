"""Who may use the web app: the token, the Host allowlist and the Origin check (pure ASGI).

How this works and why (SECURITY.md, "The web server"):

* **Token.** Every API request carries the server's token, loopback included: any local
  program or user can connect to a loopback port. It goes in ``Authorization: Bearer <token>``;
  ``?token=`` is accepted on ``GET`` only, because ``EventSource`` cannot set headers and the
  printed URL must open the page. The comparison takes constant time. The page (``/``) and
  its assets (``/static/...``) are served without the token: they are the package's own files
  and hold no state, and the page must load after it stripped ``?token=`` from its address.
  ``--no-token`` (tests only) turns the token off, and says so.
* **Host.** The ``Host`` header must name this server exactly: ``localhost``, ``127.0.0.1``,
  ``[::1]``, the bound name or a name the user allowed (``--allow-host``), with or without a
  port. The port is not compared: ``ssh -L 9000:localhost:8765`` makes the browser send
  ``localhost:9000``. A DNS-rebinding page's requests carry its own name
  (``127.attacker.com``) and are refused.
* **Origin.** A request with an ``Origin`` must come from this server's own page: the
  Origin's host and port equal the ``Host`` header's (``null`` and other sites are refused).
  A state-changing request (``POST``...) without ``Origin`` comes from a program, not a
  browser (browsers send it on every such request); it is allowed only with the token in the
  ``Authorization`` header (or with ``--no-token``). State-changing requests must also be JSON,
  so a cross-site form cannot send one, and their body is at most :data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from loomkin.core.nesting import nesting_exceeds
from loomkin.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "LOOPBACK_NAMES",
    "MAX_BODY",
    "WILDCARDS",
    "AccessMiddleware",
    "AccessPolicy",
    "check_token",
    "generate_token",
    "host_names",
]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
"""Host names every server answers to."""
WILDCARDS = frozenset({"", "0.0.0.0", "[::]", "::"})
"""Bind addresses that are no name a browser should use (``0.0.0.0`` reaches localhost)."""
MAX_BODY = 1 << 20
"""Largest request body accepted (bytes); the largest field is a 20,000-character message."""

MAX_BODY_DEPTH = 64
"""Deepest nesting accepted in a request body (every request of the API nests under five)."""

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PUBLIC_EXACT = frozenset({"/"})
_PUBLIC_PREFIX = "/static/"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def generate_token() -> str:
    """A new random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def check_token(token: str) -> str:
    """Return ``token`` if it can be used as the server's token, else raise ``ConfigError``."""
    if not token.strip():
        raise ConfigError("the access token is empty; pass a non-empty --token or unset it")
    if token != token.strip() or not all(0x20 <= ord(c) < 0x7F for c in token):
        raise ConfigError(
            "the access token must be printable ASCII without leading or trailing spaces "
            "(it travels in an HTTP header)"
        )
    return token


def host_names(bound: str, allowed: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` names a server bound to ``bound`` answers to (with ``allowed`` ones).

    Raises:
        ConfigError: an allowed name is not a host name or an IP address.
    """
    names = set(LOOPBACK_NAMES)
    bound_name = _normal_name(bound)
    if bound_name is not None and bound_name not in WILDCARDS:
        names.add(bound_name)
    for name in allowed:
        normal = _normal_name(name)
        if normal is None or normal in WILDCARDS:
            raise ConfigError(f"--allow-host {name[:100]!r} is not a host name or IP address")
        names.add(normal)
    return frozenset(names)


def _normal_name(name: str) -> str | None:
    """``name`` as a ``Host`` header carries it (lower case, IPv6 in brackets), or None."""
    text = name.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        return f"[{text}]" if re.fullmatch(r"[0-9a-f:.]+", text) else None
    return text if text == "" or _HOST_NAME.match(text) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPolicy:
    """The checks of one server: its token (``None``: ``--no-token``) and host names."""

    token: str | None
    hosts: frozenset[str] = LOOPBACK_NAMES

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Return ``(status, message)`` when the request must be refused, else ``None``."""
        headers = _headers(scope)
        if headers is None:
            return 400, "send each of Host, Origin and Authorization at most once"
        host = _split_host(headers.get("host", ""))
        if host is None or host[0] not in self.hosts:
            shown = headers.get("host", "")[:100]
            return 421, (
                f"this server does not answer to the host name {shown!r} (it answers to "
                f"{', '.join(sorted(self.hosts))}; start it with --allow-host NAME to add one)"
            )
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host, scope):
            return 403, f"cross-origin request from {origin[:100]!r} refused"
        public = scope["type"] == "http" and _is_public(scope.get("path", ""))
        authorisation = self._authorisation(scope, headers)
        if not public and authorisation == "wrong":
            return 401, (
                "missing or wrong token: open the URL `loomkin serve` printed (it carries "
                "?token=), or send 'Authorization: Bearer <token>'"
            )
        if method in _UNSAFE:
            if authorisation == "query":
                return 401, "send the token in the Authorization header, not in the URL"
            if origin is None and self.token is not None and authorisation != "header":
                return 403, "a request without Origin must carry the token in Authorization"
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                return 415, "send the request body as JSON (Content-Type: application/json)"
        return None

    def _authorisation(self, scope: Scope, headers: dict[str, str]) -> str:
        """How the request proved it knows the token.

        ``header``, ``query``, ``none`` (no token is needed) or ``wrong`` (missing or not it).
        """
        if self.token is None:
            return "none"
        expected = self.token.encode()
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, given = auth.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode("latin-1"), expected
            )
            return "header" if ok else "wrong"
        query = scope.get("query_string", b"").decode("latin-1")
        tokens = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "token"]
        if len(tokens) == 1 and hmac.compare_digest(tokens[0].encode("utf-8"), expected):
            return "query"
        return "wrong"


def _headers(scope: Scope) -> dict[str, str] | None:
    """The request's headers by lower-case name (None: a checked header came twice)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name in headers and name in ("host", "origin", "authorization"):
            return None
        headers[name] = raw_value.decode("latin-1")
    return headers


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``Host: name[:port]`` as ``(name, port)``, or None when it is malformed."""
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[: end + 1], text[end + 1 :]
    elif text.count(":") > 1:
        return None  # a bare IPv6 address is no Host
    else:
        name, sep, port = text.partition(":")
        rest = sep + port
    if not name:
        return None
    if not rest:
        return name, None
    if rest[0] != ":" or not _PORT.match(rest[1:]):
        return None
    number = int(rest[1:])
    return (name, number) if 0 < number < 65536 else None


def _same_origin(origin: str, host: tuple[str, int | None], scope: Scope) -> bool:
    """Whether ``Origin`` is this server's own page as the browser addressed it."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or parts.path or parts.query or parts.username:
        return False
    netloc = _split_host(parts.netloc)
    if netloc is None:
        return False
    default = _DEFAULT_PORTS[scheme]
    origin_port = netloc[1] or default
    host_port = host[1] or _DEFAULT_PORTS.get(scope.get("scheme", "http"), default)
    return netloc[0] == host[0] and origin_port == host_port


def _is_public(path: str) -> bool:
    return path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIX)


class AccessMiddleware:
    """Applies an :class:`AccessPolicy` to every HTTP and WebSocket request."""

    def __init__(self, app: ASGIApp, *, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        refusal = self.policy.refusal(scope)
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": refusal[1]})
                return
            await _refuse(send, *refusal)
            return
        if scope["type"] == "http" and scope.get("method") in _UNSAFE:
            await self._bounded(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole body (at most :data:`MAX_BODY` bytes), then run the app on it."""
        declared = dict(scope.get("headers", ())).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            await _refuse(send, 413, f"the request body must be at most {MAX_BODY} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:  # also bounds a chunked body, which declares no length
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await _refuse(send, 413, f"the request body must be at most {MAX_BODY} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        if nesting_exceeds(whole, MAX_BODY_DEPTH):
            # Parsing it would run the interpreter to its recursion limit (core.nesting).
            await _refuse(send, 422, f"the request body nests more than {MAX_BODY_DEPTH} levels")
            return
        body: Message | None = {"type": "http.request", "body": whole}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()  # after the body: the disconnect

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message, "errors": []}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
