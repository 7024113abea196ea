"""The web app: the HTTP API, the live feed and the page, on one :class:`Loomkin` runtime.

How this works and why:

* The app is an adapter (STYLE 18): routes turn HTTP into calls on the public runtime API,
  and the live feed is a bounded subscription to the event log. The runtime is owned by the
  caller (the CLI, a test); the app's one ``lifespan`` only ends what the app itself owns:
  the open live streams. Like the CLI, the app uses only the facade (``loomkin.service``):
  an import contract keeps it from the runtime's insides.
* Errors: a :class:`~loomkin.errors.NotFound` is a 404, a refused action (a state transition,
  a policy) is a 409, any other bad input is a 422, a cluster session whose worker did not
  answer in time a 503, always as ``{"detail": "...", "errors": [...]}``
  naming the problem. A bad request never becomes a 500.
* Access (``access.py``, SECURITY.md): a token on every API request, loopback included; an
  exact ``Host`` allowlist against DNS rebinding; ``Origin`` checked so only the server's own
  page (or a program holding the token) can change state; JSON bodies of bounded size.
* New sessions (``launch.py``): only on projects under the server's roots, only with the
  model servers it was started with, always with the project's ``loomkin.toml``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from loomkin.api.access import AccessMiddleware, AccessPolicy, check_token, host_names
from loomkin.api.cluster_routes import cluster_router
from loomkin.api.coordination_routes import coordination_router
from loomkin.api.cost_routes import cost_router
from loomkin.api.launch import LaunchPolicy, NotAllowed
from loomkin.api.question_routes import question_router
from loomkin.api.routes import ApiContext, router
from loomkin.api.scaling import scaling_router
from loomkin.api.speculation import speculation_router
from loomkin.api.web_routes import web_router
from loomkin.cluster.actions import SessionNotHosted
from loomkin.errors import (
    InvalidTransition,
    LeaseError,
    LoomkinError,
    MissingCredentials,
    NotFound,
    PathEscapeError,
    PolicyRefused,
    UserError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from loomkin.api.cluster_view import ClusterView
    from loomkin.service.runtime import Loomkin

__all__ = ["create_app"]


def create_app(
    loomkin: Loomkin,
    *,
    token: str | None = None,
    bound: str = "127.0.0.1",
    allowed_hosts: Iterable[str] = (),
    launch: LaunchPolicy | None = None,
    cluster: ClusterView | None = None,
) -> FastAPI:
    """Build the web app on ``loomkin``.

    Args:
        loomkin: The runtime whose sessions the app shows and drives (owned by the caller).
        token: Required on every API request when set (``None``: ``--no-token``, for tests;
            :func:`~loomkin.api.server.serve` generates one by default).
        bound: The address the server listens on (its name is an allowed ``Host``).
        allowed_hosts: More ``Host`` names to answer to (``--allow-host``).
        launch: What ``POST /api/sessions`` may open (default: nothing).
        cluster: With ``serve --bus``: the cluster whose sessions the app shows and drives
            (``loomkin`` then only watches the shared store).

    Raises:
        ConfigError: the token or an allowed host name is unusable.
    """
    if token is not None:
        check_token(token)
    ctx = ApiContext(loomkin=loomkin, token=token, launch=launch or LaunchPolicy(), cluster=cluster)
    policy = AccessPolicy(token=token, hosts=host_names(bound, allowed_hosts))

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
        docs_url=None,  # the docs pages load scripts from a CDN and cannot send the token
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.include_router(router)
    app.include_router(speculation_router)
    app.include_router(coordination_router)
    app.include_router(question_router)
    app.include_router(scaling_router)
    app.include_router(web_router)
    app.include_router(cost_router)
    app.include_router(cluster_router)
    static = resources.files("loomkin.api") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    _add_error_handlers(app)
    app.add_middleware(AccessMiddleware, policy=policy)
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
    if isinstance(exc, SessionNotHosted):  # a worker of the cluster may host it in a moment
        return 503
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, NotAllowed | PathEscapeError):
        return 403
    if isinstance(exc, InvalidTransition | PolicyRefused | LeaseError):
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
