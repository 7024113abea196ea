"""Traces of sessions for the CLI: ``loomkin trace export`` and ``loomkin run --otlp``.

Both go through :func:`loomkin.telemetry.export_session`, which builds the spans from the
log (SPEC §3.17). :func:`export_trace` reads a stored session's history and sends it.
:func:`live_trace` follows a running session's events and sends each span as soon as the
event that closes it is committed; when the block ends it takes every event the session
committed until then (nothing is cut off by stopping the subscription early), and ends what
is still open as ``loomkin.unfinished``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loomkin.errors import ConfigError
from loomkin.telemetry import OTEL_INSTALL_HINT, ExportSummary, export_session

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from loomkin.core.events import RecordedEvent
    from loomkin.runtime.eventlog import Subscription
    from loomkin.service.runtime import Loomkin
    from loomkin.service.session import Session

__all__ = ["LiveTrace", "export_trace", "live_trace"]


async def export_trace(
    loomkin: Loomkin,
    session_id: str,
    *,
    otlp_endpoint: str | None = None,
    file: Path | None = None,
    include_content: bool = False,
) -> ExportSummary:
    """Export a stored session's trace (see :func:`~loomkin.telemetry.export_session`).

    With neither ``otlp_endpoint`` nor ``file``, the OTLP exporter is configured by the
    standard ``OTEL_EXPORTER_OTLP_*`` variables.

    Raises:
        NotFound: the store has no such session.
        ConfigError: the ``otel`` extra is missing, the URL is not http(s), or the file
            cannot be written.
    """
    events = await loomkin.history(session_id)
    return await export_session(
        events,
        otlp_endpoint=otlp_endpoint,
        file=file,
        session_id=session_id,
        include_content=include_content,
    )


class LiveTrace:
    """A running export; :attr:`summary` is set when the ``live_trace`` block has ended."""

    def __init__(self, session: Session, sub: Subscription) -> None:
        self._session = session
        self._sub = sub
        self._seen = 0
        self._target: int | None = None
        self.summary: ExportSummary | None = None

    async def events(self) -> AsyncIterator[RecordedEvent]:
        """The session's events as they are committed, until :meth:`stop` says where to end."""
        try:
            async for recorded in self._sub:
                self._seen = recorded.position
                yield recorded
                if self._target is not None and recorded.position >= self._target:
                    return
        finally:
            self._sub.close()

    async def stop(self) -> None:
        """End after the last event committed so far (at once if it was already read)."""
        rest = await self._session.history(after=self._seen)
        if not rest:
            self._sub.close()
            return
        self._target = rest[-1].position


def _check_destination(otlp_endpoint: str | None) -> None:
    """Refuse at once what the exporter would refuse only once the session has run."""
    try:
        import loomkin.telemetry.otel  # noqa: F401 - only whether the otel extra is there
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(("opentelemetry", "google")):
            raise
        raise ConfigError(
            f"exporting traces needs OpenTelemetry, which is not installed: {OTEL_INSTALL_HINT}"
        ) from None
    if otlp_endpoint is not None:
        parts = urlsplit(otlp_endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"OTLP endpoint {otlp_endpoint!r} must be an http(s) URL, "
                "e.g. http://localhost:4318"
            )


@contextlib.asynccontextmanager
async def live_trace(
    session: Session,
    *,
    otlp_endpoint: str | None = None,
    file: Path | None = None,
    include_content: bool = False,
) -> AsyncIterator[LiveTrace]:
    """Export ``session``'s spans while the block runs (see the module docstring).

    Raises:
        ConfigError: the ``otel`` extra is missing or the URL is not http(s) (at once,
            before the block runs).
    """
    _check_destination(otlp_endpoint)
    live = LiveTrace(session, session.events(after=0))
    # Owned here: awaited when the block ends, cancelled and awaited if the block fails.
    exporting = asyncio.create_task(
        export_session(
            live.events(),
            otlp_endpoint=otlp_endpoint,
            file=file,
            session_id=session.session_id,
            include_content=include_content,
        ),
        name=f"live-trace:{session.session_id}",
    )
    try:
        yield live
    except BaseException:
        exporting.cancel()
        await asyncio.wait([exporting])
        raise
    await live.stop()
    live.summary = await exporting
