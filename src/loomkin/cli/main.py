"""The ``loomkin`` command: argument parsing only; everything goes through the public API."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from loomkin.cli.progress import describe
from loomkin.errors import LoomkinError
from loomkin.service import Loomkin, Session
from loomkin.service.config import load_config
from loomkin.service.options import session_options

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from loomkin.agents.agent import Agent
    from loomkin.agents.session import PermissionResponder
    from loomkin.core.records import PermissionDecision

__all__ = ["main"]

console = Console(highlight=False)


def _run(coro: Coroutine[object, object, int]) -> None:
    try:
        code = asyncio.run(coro)
    except LoomkinError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; the session is in the store and can be resumed")
        sys.exit(130)
    sys.exit(code)


def default_store(project: Path) -> str:
    """The SQLite store of a project: ``<project>/.loomkin/loomkin.db``."""
    return f"sqlite:///{project / '.loomkin' / 'loomkin.db'}"


@click.group()
@click.version_option(package_name="loomkin")
def cli() -> None:
    """Loomkin: self-organizing teams of coding agents you can pause, inspect and steer."""


@cli.command()
@click.argument("goal")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--model", "model_spec", help="PROVIDER:MODEL, e.g. openai:gpt-4.1.")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@click.option("--yes", is_flag=True, help="Allow every write and shell call without asking.")
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
def run(
    goal: str,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    yes: bool,
    store: str | None,
) -> None:
    """Run GOAL with a team of agents on the project, showing live progress."""
    _run(_run_goal(goal, project.resolve(), model_spec, base_url, yes, store))


async def _run_goal(
    goal: str,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    yes: bool,
    store: str | None,
) -> int:
    if not project.is_dir():  # noqa: ASYNC240 - one stat before anything runs
        raise click.BadParameter(f"{project} is not a directory", param_hint="--project")
    options = session_options(load_config(project))
    async with await Loomkin.open(store or default_store(project)) as loomkin:
        session = await loomkin.open_session(
            project,
            model=model_spec or options.model,
            base_url=base_url or options.base_url,
            settings=options.settings,
            policy=options.policy,
            prices=options.prices,
            title=goal[:80],
        )
        session.set_permission_responder(_allow_all if yes else _ask_in_terminal())
        console.print(f"[bold]session[/] {session.session_id} on {project}")
        return await _drive(session, goal)


async def _allow_all(_agent: Agent, _request_id: str) -> PermissionDecision:
    return "allow_once"


def _ask_in_terminal() -> PermissionResponder:
    lock = asyncio.Lock()

    async def ask(agent: Agent, request_id: str) -> PermissionDecision:
        pending = agent.memory.pending_permission
        what = f"{pending.tool} {pending.target}" if pending else request_id
        async with lock:
            answer = await asyncio.to_thread(
                click.prompt,
                f"{agent.name} wants to run {what}. Allow? [o]nce / [a]lways / [d]eny",
                type=click.Choice(["o", "a", "d"]),
                default="d",
            )
        return {"o": "allow_once", "a": "allow_always"}.get(answer, "deny")  # type: ignore[return-value]  # literal values

    return ask


async def _drive(session: Session, goal: str | None) -> int:
    printer = asyncio.create_task(_print_events(session))
    try:
        if goal is not None:
            await session.send(goal)
        await session.wait_idle()
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    await _print_summary(session)
    return 0


async def _print_events(session: Session) -> None:
    async with session.events(after=0) as events:
        async for recorded in events:
            line = describe(recorded.event, session)
            if line is not None:
                console.print(line)


async def _print_summary(session: Session) -> None:
    summary = await session.summary()
    console.rule("summary")
    tasks = ", ".join(f"{n} {status}" for status, n in sorted(summary.tasks.items())) or "none"
    console.print(f"tasks: {tasks}")
    console.print(f"files changed: {', '.join(summary.files_changed) or 'none'}")
    for decision in summary.decisions:
        console.print(f"decision: {decision}")
    console.print(
        f"model calls: {summary.model_calls}, tokens: {summary.input_tokens} in / "
        f"{summary.output_tokens} out, cost: ${summary.cost_usd:.4f}"
    )


@cli.command()
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put the sample project (default: a new temporary directory).",
)
@click.option(
    "--pace",
    type=float,
    default=0.05,
    show_default=True,
    help="Real seconds each scripted model call takes.",
)
def demo(project: Path | None, pace: float) -> None:
    """Run the bundled demo on a sample project with a scripted (simulated) model."""
    _run(_demo(project, pace))


async def _demo(project: Path | None, pace: float) -> int:
    from loomkin.demo import copy_sample_project, start_demo  # the demo is optional weight

    root = await asyncio.to_thread(lambda: copy_sample_project(project and project.resolve()))
    console.print(
        "[bold yellow]SIMULATED[/]: the model's answers are scripted; every agent, tool call, "
        "file write, task and message is the real runtime working on a sample project at "
        f"{root}"
    )
    async with await Loomkin.open(default_store(root)) as loomkin:
        session = await start_demo(loomkin, project=root, pace_s=pace)
        console.print("[yellow]permission prompts are answered automatically in the demo[/]")
        return await _drive(session, None)


def main() -> None:
    """Entry point of the ``loomkin`` console script."""
    cli()
