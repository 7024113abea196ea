"""The web app: the HTTP API, the live feed and the page, on one :class:`Loomkin` runtime.

How this works and why:

* The app is an adapter (STYLE 18): routes turn HTTP into calls on the public runtime API,
  and the live feed is a bounded subscription to the event log. The runtime is owned by the
  caller (the CLI, a test); the app's one ``lifespan`` only ends what the app itself owns:
  the open live streams. Like the CLI, the app uses only the facade (``loomkin.service``):
  an import contract keeps it from the runtime's insides.
* Errors: a :class:`~loomkin.errors.NotFound` is a 404, a refused action (a state transition,
  a policy) is a 409, any other bad input is a 422, always as ``{"detail": "...", "errors": [...]}``
  naming the problem. A bad request never becomes a 500.
* Access: with a token, every request (the page, its assets, the API and the live stream)
  must carry it, as ``Authorization: Bearer <token>`` or ``?token=`` (EventSource cannot set
  headers). Without a token the app answers only requests addressed to a loopback host name,
  which defeats DNS rebinding. State-changing requests must be JSON
  (``Content-Type: application/json``), so a cross-site form or ``no-cors`` fetch cannot
  drive the agents.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from loomkin.api.routes import ApiContext, router
from loomkin.errors import (
    InvalidTransition,
    LoomkinError,
    MissingCredentials,
    NotFound,
    PolicyRefused,
    UserError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import ASGIApp, Receive, Scope, Send

    from loomkin.service.runtime import Loomkin

__all__ = ["LOOPBACK_NAMES", "create_app"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_app(loomkin: Loomkin, *, token: str | None = None) -> FastAPI:
    """Build the web app on ``loomkin``.

    Args:
        loomkin: The runtime whose sessions the app shows and drives (owned by the caller).
        token: When set, every request must carry it (see the module docstring).
    """
    if token is not None and not token.strip():
        raise UserError("the access token is empty; pass a non-empty --token or unset it")
    ctx = ApiContext(loomkin=loomkin, token=token)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            ctx.close_streams()

    app = FastAPI(
        title="Loomkin",
        summary="Watch and steer self-organizing teams of coding agents.",
        version="1",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.include_router(router)
    static = resources.files("loomkin.api") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    _add_error_handlers(app)
    app.add_middleware(AccessMiddleware, token=token)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoomkinError)
    async def loomkin_error(_request: Request, exc: LoomkinError) -> JSONResponse:
        return _error(_status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [_describe(e) for e in exc.errors()]
        return _error(422, "invalid request: " + "; ".join(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))


def _status_of(exc: LoomkinError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidTransition | PolicyRefused):
        return 409
    if isinstance(exc, UserError | MissingCredentials):
        return 422
    return 502


def _describe(error: object) -> str:
    if not isinstance(error, dict):
        return str(error)
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


def _error(status: int, message: str, detail: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "errors": detail or []}, status_code=status)


class AccessMiddleware:
    """Checks the token, the host name and the body type of every request (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await _error(*refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Return ``(status, message)`` when the request must be refused."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if host not in LOOPBACK_NAMES and not host.startswith("127."):
                return 421, f"this server answers only on localhost, not {host!r}"
        elif not self._authorised(scope, headers):
            return 401, "missing or wrong token: send 'Authorization: Bearer <token>'"
        if scope["method"] in _UNSAFE:
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                return 415, "send the request body as JSON (Content-Type: application/json)"
        return None

    def _authorised(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return hmac.compare_digest(auth[7:].strip().encode(), expected)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [""])[0]
        return bool(given) and hmac.compare_digest(given.encode(), expected)


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
