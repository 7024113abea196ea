"""``loomkin _bench-web-host`` (hidden): the server side of ``python -m loomkin.bench web``.

Builds a session of ``--events`` events in a fresh SQLite store under ``--dir``, serves the
web app on it (no token: loopback only, for the benchmark's browser), prints ``URL <url>``,
then obeys its stdin: ``stream`` starts appending 10 events a second to the live session,
``stop`` ends that and prints ``STREAMED <count>``. Ctrl-C (SIGINT) ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from loomkin.bench.web import Filler
    from loomkin.service import Loomkin

__all__ = ["bench_web_host"]


@click.command("_bench-web-host", hidden=True)
@click.option("--events", type=click.IntRange(min=100), required=True)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--port", type=click.IntRange(1, 65535), required=True)
def bench_web_host(events: int, folder: Path, port: int) -> None:
    """Host a benchmark session for ``python -m loomkin.bench web`` (not for people)."""
    project = folder.resolve() / "project"
    project.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the benchmark ends it
        asyncio.run(_host(events, project, port))


async def _host(events: int, project: Path, port: int) -> None:
    from loomkin.api import serve
    from loomkin.bench.web import build_session

    loomkin, session, filler = await build_session(
        f"sqlite:///{project.parent}/store.db", project, events
    )

    def ready(url: str) -> None:
        print(f"URL {url.split('?')[0]}?session={session.session_id}", flush=True)

    try:
        async with asyncio.TaskGroup() as group:
            commands = group.create_task(_commands(loomkin, filler))
            await serve(loomkin, port=port, no_token=True, ready=ready)
            commands.cancel()
    finally:
        await loomkin.close()


async def _commands(loomkin: Loomkin, filler: Filler) -> None:
    from loomkin.bench.web import stream_events

    stop = asyncio.Event()
    streaming: asyncio.Task[int] | None = None
    async with asyncio.TaskGroup() as group:
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line == "stream" and streaming is None:
                stop.clear()
                streaming = group.create_task(stream_events(filler, loomkin, stop, 10.0))
            elif line == "stop" and streaming is not None:
                stop.set()
                print(f"STREAMED {await streaming}", flush=True)
                streaming = None
            elif not line:
                return
