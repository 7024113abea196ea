"""Run the web app with uvicorn, in the caller's event loop.

The listening sockets are opened here, before uvicorn starts: a port in use or a host name
that does not resolve is then a :class:`~loomkin.errors.ConfigError` naming the address,
where uvicorn would log it and call ``sys.exit`` inside the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING
from urllib.parse import quote

import uvicorn

from loomkin.api.access import LOOPBACK_NAMES, WILDCARDS, check_token, generate_token
from loomkin.api.app import create_app
from loomkin.api.routes import ApiContext
from loomkin.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import FrameType

    from loomkin.api.cluster_view import ClusterView
    from loomkin.api.launch import LaunchPolicy
    from loomkin.service.runtime import Loomkin

__all__ = ["is_loopback", "listen", "serve"]

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    name = host.strip().lower()
    if name in LOOPBACK_NAMES or f"[{name}]" in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> list[socket.socket]:
    """Open listening sockets on every address of ``host`` (one port for all of them).

    Raises:
        ConfigError: the port is out of range, the host does not resolve, or the address
            cannot be bound (in use, not this machine's, no permission).
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {port}")
    shown = f"{host[:100]!r} port {port}"
    name = host.strip().strip("[]") or None
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ConfigError(f"cannot listen on {shown}: {_reason(exc)}") from None
    sockets: list[socket.socket] = []
    first_error: BaseException | None = None
    for family, address in _addresses(infos):
        # Every address of a name (localhost: 127.0.0.1 and ::1) on the port of the first.
        bound_port = sockets[0].getsockname()[1] if sockets else port
        try:
            sockets.append(socket.create_server((address, bound_port), family=family))
        except OSError as exc:
            first_error = first_error or exc
            if sockets:
                logger.warning("cannot also listen on %s: %s", address, _reason(exc))
    if not sockets:
        reason = _reason(first_error) if first_error else "no usable address"
        raise ConfigError(f"cannot listen on {shown}: {reason}")
    return sockets


def _addresses(
    infos: Sequence[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[object, ...]]],
) -> list[tuple[socket.AddressFamily, str]]:
    """The distinct IPv4 and IPv6 addresses of a ``getaddrinfo`` answer, in its order."""
    found: list[tuple[socket.AddressFamily, str]] = []
    for family, _kind, _proto, _canon, address in infos:
        entry = (family, str(address[0]))
        if family in (socket.AF_INET, socket.AF_INET6) and entry not in found:
            found.append(entry)
    return found


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Server(uvicorn.Server):
    """Announces its URL once listening; ends the live streams as soon as shutdown starts."""

    def __init__(
        self, config: uvicorn.Config, ctx: ApiContext, ready: Callable[[str], None] | None
    ) -> None:
        super().__init__(config)
        self._ctx = ctx
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._ready is not None:
            self._ready(self.url())

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._ctx.close_streams()

    def url(self) -> str:
        """The page's address (with the token, when there is one)."""
        host, port = self.config.host, self.config.port
        for listener in self.servers:
            for sock in listener.sockets:
                port = sock.getsockname()[1]
        if host.strip() in WILDCARDS:  # every interface: loopback is one, and an allowed Host
            host = "::1" if ":" in host else "127.0.0.1"
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        token = self._ctx.token
        query = f"/?token={quote(token, safe='')}" if token else "/"
        return f"http://{shown}:{port}{query}"


async def serve(
    loomkin: Loomkin,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    no_token: bool = False,
    allowed_hosts: Iterable[str] = (),
    launch: LaunchPolicy | None = None,
    sockets: list[socket.socket] | None = None,
    ready: Callable[[str], None] | None = None,
    cluster: ClusterView | None = None,
) -> None:
    """Serve the web app on ``host:port`` until interrupted (Ctrl-C or SIGTERM).

    Args:
        loomkin: The runtime to show and drive (the caller opens and closes it).
        host: The interface to bind; anything but loopback requires a token.
        port: The TCP port (0 picks a free one; ``ready`` gets the real URL).
        token: Required on every API request (``None``: a new random one, which ``ready``'s
            URL carries).
        no_token: Ask for no token at all (tests only): any local program or user that can
            connect can then drive the agents. Refused for a non-loopback ``host``.
        allowed_hosts: ``Host`` names to answer to besides localhost and ``host``.
        launch: What ``POST /api/sessions`` may open (default: nothing).
        sockets: Sockets already listening on ``host:port`` (from :func:`listen`; the
            server closes them), so a caller can fail on a port in use before starting work.
        ready: Called with the page's URL (``?token=`` included) once connections are accepted.
        cluster: With ``--bus``: the cluster whose sessions the app shows and drives.

    Raises:
        ConfigError: no token for a non-loopback ``host``, a bad token or host name, or the
            address cannot be listened on.
    """
    listening = list(sockets or ())
    try:
        app = create_app(
            loomkin,
            token=_token(host, token, no_token=no_token),
            bound=host,
            allowed_hosts=allowed_hosts,
            launch=launch,
            cluster=cluster,
        )
        ctx = app.state.ctx
        assert isinstance(ctx, ApiContext)
        listening = listening or listen(host, port)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,
            proxy_headers=False,  # no proxy is trusted: scheme and client are what they are
            server_header=False,
        )
        await _serve_until_cancelled(_Server(config, ctx, ready), ctx, listening)
    finally:
        for sock in listening:
            with contextlib.suppress(OSError):
                sock.close()


async def _serve_until_cancelled(
    server: _Server, ctx: ApiContext, sockets: list[socket.socket]
) -> None:
    """Run ``server``; when this is cancelled, shut it down as Ctrl-C does, then re-raise.

    ``run --serve`` stops its web app by cancelling it once the session is done. A cancel
    that reaches uvicorn inside its loop ends the app's lifespan with a CancelledError,
    which uvicorn logs as an ``ERROR: Traceback`` on the user's terminal. Asking uvicorn to
    exit instead lets the lifespan end normally (open feeds are closed first, and uvicorn
    gives requests ``timeout_graceful_shutdown`` to finish).
    """
    running = asyncio.create_task(server.serve(sockets=sockets), name="web app")
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        server.should_exit = True
        ctx.close_streams()
        await running
        raise
    finally:
        if not running.done():  # cancelled again while shutting down: stop waiting
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


def _token(host: str, token: str | None, *, no_token: bool) -> str | None:
    """The server's token: the one given, a new one, or none (``no_token``, loopback only)."""
    if not no_token:
        return check_token(token) if token is not None else generate_token()
    if token:
        raise ConfigError("pass either a token or no_token, not both")
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host[:100]!r} without a token: anyone who can reach it "
            "could drive your agents; drop --no-token, or bind 127.0.0.1"
        )
    return None
