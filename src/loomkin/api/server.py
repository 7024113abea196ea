"""Run the web app with uvicorn, in the caller's event loop."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import quote

import uvicorn

from loomkin.api.app import LOOPBACK_NAMES, create_app
from loomkin.api.routes import ApiContext
from loomkin.errors import ConfigError

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from types import FrameType

    from loomkin.service.runtime import Loomkin

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
        shown = f"[{host}]" if ":" in host else host
        token = self._ctx.token
        query = f"/?token={quote(token, safe='')}" if token else "/"
        return f"http://{shown}:{port}{query}"


async def serve(
    loomkin: Loomkin,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the web app on ``host:port`` until interrupted (Ctrl-C or SIGTERM).

    Args:
        loomkin: The runtime to show and drive (the caller opens and closes it).
        host: The interface to bind; anything but loopback requires ``token``.
        port: The TCP port (0 picks a free one; ``ready`` gets the real URL).
        token: Required on every request when set.
        ready: Called with the app's URL once the server accepts connections.

    Raises:
        ConfigError: ``host`` is not a loopback address and no token was given, or the
            port is out of range.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on {host!r} without a token: anyone who can reach it could "
            "drive your agents; pass --token (or set LOOMKIN_TOKEN), or bind 127.0.0.1"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {port}")
    app = create_app(loomkin, token=token or None)
    ctx = app.state.ctx
    assert isinstance(ctx, ApiContext)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=3
    )
    await _Server(config, ctx, ready).serve()
