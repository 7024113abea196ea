"""The ``loomkin`` command: argument parsing only; everything goes through the public API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from loomkin.cli.bench_web import bench_web_host
from loomkin.cli.cluster import cluster_group
from loomkin.cli.cluster import worker as cluster_worker
from loomkin.cli.common import console, default_store, fail, run_command, stored_sessions
from loomkin.cli.control import agent_path, call, echo_json, read_server_info
from loomkin.cli.coordination import budget_group, negotiation_group, rendezvous_group
from loomkin.cli.observe import cost, mcp, trace
from loomkin.cli.questions import questions_group
from loomkin.cli.run import run
from loomkin.cli.serve import serve
from loomkin.cli.sessions import (
    ModelChoice,
    Target,
    allow_all,
    api_key_env_option,
    ask_in_terminal,
    check_pace,
    drive,
    otlp_option,
    project_dir,
    resume_configured,
    take_over_option,
    tracing,
)
from loomkin.cli.speculation import speculation
from loomkin.cli.store import store_group
from loomkin.cli.team import team_group
from loomkin.errors import LoomkinError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["default_store", "main"]


@click.group()
@click.version_option(package_name="loomkin")
def cli() -> None:
    """Loomkin: self-organizing teams of coding agents you can pause, inspect and steer."""


@cli.command()
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project whose stored session to resume (its .loomkin/loomkin.db).",
)
@click.option("--session", "session_id", help="Session id (default: the newest one).")
@click.option("--model", "model_spec", help="PROVIDER:MODEL (default: the session's model).")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@api_key_env_option
@click.option("--yes", is_flag=True, help="Allow every write and shell call without asking.")
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
@take_over_option
def resume(
    project: Path,
    session_id: str | None,
    model_spec: str | None,
    base_url: str | None,
    api_key_env: str | None,
    yes: bool,
    store: str | None,
    take_over: bool,
) -> None:
    """Resume a stored session after a stop or a crash: interrupted work continues."""
    model = ModelChoice(spec=model_spec, base_url=base_url, api_key_env=api_key_env)
    target = Target(session_id=session_id, take_over=take_over)
    run_command(_resume(target, model, yes, stored_sessions(project_dir(project), store)))


async def _resume(target: Target, model: ModelChoice, yes: bool, store: str) -> int:
    from loomkin.service import Loomkin

    async with await Loomkin.open(store) as loomkin:
        after = loomkin.last_position
        # Settings, permissions and the rest come from the session's loomkin.toml.
        session = await resume_configured(loomkin, target, model)
        session.set_permission_responder(allow_all if yes else ask_in_terminal())
        console.print(f"[bold]resumed[/] session {escape(session.session_id)}")
        paused = [a.name for a in session.agents() if a.status == "paused"]
        if paused:
            names = escape(", ".join(paused))
            console.print(f"paused agents stay paused: {names} (loomkin agent resume)")
        return await drive(session, None, after=after, ask_user=not yes)


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
    callback=check_pace,
    help="Real seconds each scripted model call takes (0 to 60).",
)
@otlp_option
def demo(project: Path | None, pace: float, otlp: str | None) -> None:
    """Run the bundled demo on a sample project with a scripted (simulated) model."""
    target = project_dir(project, must_exist=False) if project is not None else None
    run_command(_demo(target, pace, otlp))


async def _demo(project: Path | None, pace: float, otlp: str | None = None) -> int:
    from loomkin.demo import copy_sample_project, start_demo  # the demo is optional weight
    from loomkin.service import Loomkin

    root = await asyncio.to_thread(copy_sample_project, project)
    console.print(
        "[bold yellow]SIMULATED[/]: the model's answers are scripted; every agent, tool call, "
        "file write, task and message is the real runtime working on a sample project at "
        f"{escape(str(root))}"
    )
    async with await Loomkin.open(default_store(root)) as loomkin:
        session = await start_demo(loomkin, project=root, pace_s=pace)
        console.print("[yellow]permission prompts are answered automatically in the demo[/]")
        async with tracing(session, otlp):
            return await drive(session, None)


@cli.group()
def agent() -> None:
    """Pause, resume, steer, cancel or inspect an agent of a running session."""


_project_option = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project whose running server to talk to.",
)
_session_option = click.option(
    "--session", "session_id", help="Session id (default: the served one)."
)


def _agent_target(command: Callable[..., None]) -> Callable[..., None]:
    """The arguments every agent command takes: the agent's name, the project, the session."""
    return click.argument("name")(_project_option(_session_option(command)))


@agent.command("pause")
@click.option(
    "--mode",
    type=click.Choice(["asap", "at_boundary"]),
    default="asap",
    show_default=True,
    help="asap cuts a streaming answer short; at_boundary waits for the model call or tool.",
)
@click.option("--force", is_flag=True, help="Also cancel a permission prompt it waits on.")
@_agent_target
def agent_pause(name: str, mode: str, force: bool, project: Path, session_id: str | None) -> None:
    """Pause agent NAME at its next checkpoint (asap) or step boundary."""
    _control(project, session_id, name, "pause", {"mode": mode, "force": force})


@agent.command("resume")
@_agent_target
def agent_resume(name: str, project: Path, session_id: str | None) -> None:
    """Resume agent NAME from its checkpoint."""
    _control(project, session_id, name, "resume", {})


@agent.command("steer")
@_agent_target
@click.argument("text")
@click.option(
    "--mode",
    type=click.Choice(["asap", "at_boundary"]),
    default="asap",
    show_default=True,
    help="asap cuts a streaming answer short; at_boundary lets it finish first.",
)
def agent_steer(name: str, text: str, mode: str, project: Path, session_id: str | None) -> None:
    """Give agent NAME guidance that lands in its very next model call."""
    _control(project, session_id, name, "steer", {"text": text, "mode": mode})


@agent.command("cancel")
@_agent_target
def agent_cancel(name: str, project: Path, session_id: str | None) -> None:
    """Cancel agent NAME's current task (its partial result is kept)."""
    _control(project, session_id, name, "cancel", {})


@agent.command("inspect")
@_agent_target
@click.option("--json", "as_json", is_flag=True, help="Print the whole snapshot as JSON.")
def agent_inspect(name: str, project: Path, session_id: str | None, as_json: bool) -> None:
    """Show what agent NAME is doing: step, tool, task, iteration, usage, messages."""
    _control(project, session_id, name, "inspect", None, show=None if as_json else _show_snapshot)


def _show_snapshot(answer: dict[str, object]) -> None:
    from loomkin.cli.progress import short

    snapshot = answer.get("snapshot")
    if not isinstance(snapshot, dict):
        echo_json(answer)
        return
    for key in ("name", "role", "status", "step", "current_tool", "task_id", "iteration"):
        console.print(f"{key}: {escape(str(snapshot.get(key)))}")
    usage = (
        f"{snapshot.get('input_tokens')} in / {snapshot.get('output_tokens')} out, "
        f"${snapshot.get('cost_usd')}"
    )
    console.print(f"usage: {escape(usage)}")
    messages = snapshot.get("messages")
    if isinstance(messages, list):
        console.print(f"messages: {len(messages)} (last 5)")
        for message in messages[-5:]:
            if isinstance(message, dict):
                kind = escape(str(message.get("kind")))
                console.print(f"  {kind}: {escape(short(_message_text(message), 110))}")


def _message_text(message: dict[str, object]) -> str:
    """A transcript message as a person reads it: its text, else its calls as name(arguments).

    Not the repr of the calls' dicts (call ids and quoting drowned the tool's name).
    """
    text = message.get("text") or message.get("content")
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        shown_calls = ", ".join(
            f"{call.get('name')}({call.get('arguments') or ''})"
            if isinstance(call, dict)
            else str(call)
            for call in calls
        )
        return f"{text} → {shown_calls}" if text else shown_calls
    return str(text)


def _control(
    project: Path,
    session_id: str | None,
    name: str,
    action: str,
    body: dict[str, object] | None,
    *,
    show: Callable[[dict[str, object]], None] | None = None,
) -> None:
    try:
        info = read_server_info(project.resolve())
        path = agent_path(info, session_id, name, action)
        (show or echo_json)(call(info, "GET" if body is None else "POST", path, body))
    except LoomkinError as exc:
        fail(str(exc))


cli.add_command(run)
cli.add_command(serve)
cli.add_command(mcp)
cli.add_command(trace)
cli.add_command(cost)
cli.add_command(store_group)
cli.add_command(cluster_group)
cli.add_command(cluster_worker)
cli.add_command(speculation)
cli.add_command(negotiation_group)
cli.add_command(budget_group)
cli.add_command(rendezvous_group)
cli.add_command(questions_group)
cli.add_command(team_group)
cli.add_command(bench_web_host)


def main() -> None:
    """Entry point of the ``loomkin`` console script."""
    cli()
