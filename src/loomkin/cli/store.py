"""``loomkin store``: look after the event store a project's sessions live in."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from loomkin.cli.common import console, default_store, run_command

__all__ = ["store_group"]


@click.group("store")
def store_group() -> None:
    """Look after the event store a project's sessions live in."""


@store_group.command("check")
@click.option(
    "--store", "url", help="Event store URL (default: sqlite file in <project>/.loomkin)."
)
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project whose store to check (its .loomkin/loomkin.db).",
)
def store_check(url: str | None, project: Path) -> None:
    """Verify the store end to end: positions, every event's decoding, the hash chain.

    Exits 0 when it is sound, 1 when it is damaged (the first problem is named), 2 when it
    cannot be opened at all.
    """
    run_command(_store_check(url or default_store(project.resolve())))


async def _store_check(url: str) -> int:
    from loomkin.service import check_store  # the runtime loads only when a command runs

    report = await check_store(url)
    if report.ok:
        console.print(f"[green]{escape(report.summary())}[/]")
        return 0
    console.print(f"[bold red]{escape(report.summary())}[/]")
    return 1
