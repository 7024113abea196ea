"""The ``loomkin`` command: argument parsing only; everything goes through the public API."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from loomkin.cli.common import console, default_store, run_command
from loomkin.cli.control import agent_path, call, echo_json, read_server_info, write_server_info
from loomkin.cli.observe import cost, mcp, trace
from loomkin.errors import LoomkinError, UserError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from loomkin.core.records import PermissionDecision
    from loomkin.service import Loomkin, PendingPermission, PermissionResponder, Session

__all__ = ["default_store", "main"]


_OTLP_FROM_ENV = "env"
"""``--otlp`` given without a URL: the OTEL_EXPORTER_OTLP_* variables say where to."""


_otlp_option = click.option(
    "--otlp",
    metavar="URL",
    is_flag=False,
    flag_value=_OTLP_FROM_ENV,
    default=None,
    help="Export the trace as the session runs to this OTLP/HTTP collector (alone: where "
    "OTEL_EXPORTER_OTLP_* say). Needs the otel extra.",
)


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
@click.option(
    "--serve",
    "serve_port",
    type=int,
    default=None,
    help="Also serve the web app on this port (0: any free port) for watching and steering.",
)
@_otlp_option
def run(
    goal: str,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    yes: bool,
    store: str | None,
    serve_port: int | None,
    otlp: str | None,
) -> None:
    """Run GOAL with a team of agents on the project, showing live progress."""
    run_command(
        _run_goal(goal, project.resolve(), model_spec, base_url, yes, store, serve_port, otlp)
    )


async def _run_goal(
    goal: str,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    yes: bool,
    store: str | None,
    serve_port: int | None = None,
    otlp: str | None = None,
) -> int:
    from loomkin.service import Loomkin

    if not project.is_dir():  # noqa: ASYNC240 - one stat before anything runs
        raise click.BadParameter(f"{project} is not a directory", param_hint="--project")
    async with await Loomkin.open(store or default_store(project)) as loomkin:
        session = await _open_configured(loomkin, project, model_spec, base_url, title=goal[:80])
        session.set_permission_responder(_allow_all if yes else _ask_in_terminal())
        console.print(f"[bold]session[/] {session.session_id} on {project}")
        async with _tracing(session, otlp):
            if serve_port is None:
                return await _drive(session, goal)
            async with _web_app(loomkin, session, host="127.0.0.1", port=serve_port, token=None):
                return await _drive(session, goal)


@contextlib.asynccontextmanager
async def _tracing(session: Session, otlp: str | None) -> AsyncIterator[None]:
    """With ``--otlp``: export the session's spans as its events arrive, then say what went."""
    if otlp is None:
        yield
        return
    from loomkin.service import live_trace

    endpoint = None if otlp == _OTLP_FROM_ENV else otlp
    async with live_trace(session, otlp_endpoint=endpoint) as traced:
        yield
    summary = traced.summary
    assert summary is not None  # set when the block ends normally
    refused = f", {summary.failed} not accepted (see the log)" if summary.failed else ""
    console.print(
        f"trace {summary.trace_id}: {summary.spans} spans sent to "
        f"{', '.join(summary.destinations)}{refused}"
    )


async def _open_configured(
    loomkin: Loomkin,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    *,
    title: str = "",
) -> Session:
    """Open a session on ``project`` with its loomkin.toml; the options given here win."""
    from loomkin.service.config import load_config
    from loomkin.service.options import session_options

    options = session_options(load_config(project))
    return await loomkin.open_session(
        project,
        model=model_spec or options.model,
        base_url=base_url or options.base_url,
        settings=options.settings,
        policy=options.policy,
        prices=options.prices,
        title=title,
    )


async def _allow_all(_prompt: PendingPermission) -> PermissionDecision:
    return "allow_once"


_ANSWERS: dict[str, PermissionDecision] = {"o": "allow_once", "a": "allow_always", "d": "deny"}


def _ask_in_terminal() -> PermissionResponder:
    """Ask at the terminal, one prompt at a time; deny when there is no terminal to ask."""
    lock = asyncio.Lock()

    async def ask(prompt: PendingPermission) -> PermissionDecision:
        what = f"{prompt.tool} {prompt.target}".strip()
        if not sys.stdin.isatty():
            console.print(
                f"[yellow]denied[/] {prompt.agent}: {escape(what)} (no terminal to ask; "
                "pass --yes to allow writes and shell commands)"
            )
            return "deny"
        async with lock:
            answer = await asyncio.to_thread(
                click.prompt,
                f"{prompt.agent} wants to run {what}. Allow? [o]nce / [a]lways / [d]eny",
                type=click.Choice(list(_ANSWERS)),
                default="d",
            )
        return _ANSWERS[answer]

    return ask


async def _drive(session: Session, goal: str | None, *, after: int = 0) -> int:
    printer = asyncio.create_task(_print_events(session, after))
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


async def _print_events(session: Session, after: int) -> None:
    from loomkin.cli.progress import describe

    async with session.events(after=after) as events:
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
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--session", "session_id", help="Session id (default: the newest one).")
@click.option("--model", "model_spec", help="PROVIDER:MODEL (default: the session's model).")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@click.option("--yes", is_flag=True, help="Allow every write and shell call without asking.")
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
def resume(
    project: Path,
    session_id: str | None,
    model_spec: str | None,
    base_url: str | None,
    yes: bool,
    store: str | None,
) -> None:
    """Resume a stored session after a stop or a crash: interrupted work continues."""
    run_command(_resume(project.resolve(), session_id, model_spec, base_url, yes, store))


async def _resume(
    project: Path,
    session_id: str | None,
    model_spec: str | None,
    base_url: str | None,
    yes: bool,
    store: str | None,
) -> int:
    from loomkin.service import Loomkin
    from loomkin.service.config import load_config
    from loomkin.service.options import session_options

    options = session_options(load_config(project))
    url = store or default_store(project)
    async with await Loomkin.open(url) as loomkin:
        sessions = loomkin.sessions()
        if not sessions:
            raise UserError(f"no stored session in {url}")
        chosen = session_id or sessions[-1].session_id
        factory = None
        if model_spec is None and loomkin.stored_session(chosen).model.startswith("scripted:"):
            from loomkin.demo import demo_model  # a demo session resumes with the demo's script

            factory = demo_model
        session = await loomkin.resume_session(
            chosen,
            model=model_spec,
            model_factory=factory,
            base_url=base_url or options.base_url,
            settings=options.settings,
            policy=options.policy,
            prices=options.prices,
        )
        session.set_permission_responder(_allow_all if yes else _ask_in_terminal())
        console.print(f"[bold]resumed[/] session {chosen}")
        paused = [a.name for a in session.agents() if a.status == "paused"]
        if paused:
            console.print(f"paused agents stay paused: {', '.join(paused)} (loomkin agent resume)")
        return await _drive(session, None, after=loomkin.last_position)


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
@_otlp_option
def demo(project: Path | None, pace: float, otlp: str | None) -> None:
    """Run the bundled demo on a sample project with a scripted (simulated) model."""
    run_command(_demo(project, pace, otlp))


async def _demo(project: Path | None, pace: float, otlp: str | None = None) -> int:
    from loomkin.demo import copy_sample_project, start_demo  # the demo is optional weight
    from loomkin.service import Loomkin

    root = await asyncio.to_thread(lambda: copy_sample_project(project and project.resolve()))
    console.print(
        "[bold yellow]SIMULATED[/]: the model's answers are scripted; every agent, tool call, "
        "file write, task and message is the real runtime working on a sample project at "
        f"{root}"
    )
    async with await Loomkin.open(default_store(root)) as loomkin:
        session = await start_demo(loomkin, project=root, pace_s=pace)
        console.print("[yellow]permission prompts are answered automatically in the demo[/]")
        async with _tracing(session, otlp):
            return await _drive(session, None)


@contextlib.asynccontextmanager
async def _web_app(
    loomkin: Loomkin, session: Session, *, host: str, port: int, token: str | None
) -> AsyncIterator[str]:
    """Serve the web app while the block runs; record it for ``loomkin agent`` commands."""
    from loomkin.api.server import serve  # the web stack loads only when asked for

    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def ready(url: str) -> None:
        if not listening.done():
            listening.set_result(url)

    def stopped(task: asyncio.Task[None]) -> None:
        if not listening.done():
            error = None if task.cancelled() else task.exception()
            listening.set_exception(
                error or UserError("the web server stopped before it was ready")
            )

    server = asyncio.create_task(serve(loomkin, host=host, port=port, token=token, ready=ready))
    server.add_done_callback(stopped)
    try:
        url = await listening
        info = write_server_info(
            Path(session.project_root), url=url, session_id=session.session_id, token=token
        )
        console.print(f"[bold]web app[/] {url}  (agent controls: loomkin agent --help; {info})")
        yield url
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


@cli.command()
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project to work on (with --demo: where to put the sample project).",
)
@click.option("--model", "model_spec", help="PROVIDER:MODEL for the agents.")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@click.option("--demo", is_flag=True, help="Serve the demo scenario (scripted model, no key).")
@click.option(
    "--pace",
    type=float,
    default=0.3,
    show_default=True,
    help="With --demo: real seconds each scripted model call takes.",
)
@click.option(
    "--no-auto-approve",
    is_flag=True,
    help="With --demo: answer the permission prompts yourself, in the page.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8765, show_default=True)
@click.option(
    "--token", envvar="LOOMKIN_TOKEN", help="Required on every request (env LOOMKIN_TOKEN)."
)
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
def serve(
    project: Path | None,
    model_spec: str | None,
    base_url: str | None,
    demo: bool,
    pace: float,
    no_auto_approve: bool,
    host: str,
    port: int,
    token: str | None,
    store: str | None,
) -> None:
    """Serve the web app: chat, live feed, agent cards, team tree, task graph, controls."""
    run_command(
        _serve(
            project, model_spec, base_url, demo, pace, not no_auto_approve, host, port, token, store
        )
    )


async def _serve(
    project: Path | None,
    model_spec: str | None,
    base_url: str | None,
    demo: bool,
    pace: float,
    auto_approve: bool,
    host: str,
    port: int,
    token: str | None,
    store: str | None,
) -> int:
    from loomkin.api.server import is_loopback
    from loomkin.service import Loomkin

    if not is_loopback(host) and not token:
        raise click.UsageError("binding a non-loopback address needs --token (or LOOMKIN_TOKEN)")
    if demo:
        from loomkin.demo import copy_sample_project, start_demo

        root = await asyncio.to_thread(lambda: copy_sample_project(project and project.resolve()))
        console.print(f"[bold yellow]SIMULATED[/] demo on a sample project at {root}")
    elif project is None:
        raise click.UsageError("pass --project DIR (or --demo)")
    else:
        root = await asyncio.to_thread(project.resolve)
    async with await Loomkin.open(store or default_store(root)) as loomkin:
        if demo:
            session = await start_demo(
                loomkin, project=root, auto_approve=auto_approve, pace_s=pace
            )
        else:
            session = await _open_configured(loomkin, root, model_spec, base_url)
        async with _web_app(loomkin, session, host=host, port=port, token=token):
            await asyncio.Event().wait()  # until Ctrl-C
    return 0


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
    "--mode", type=click.Choice(["asap", "at_boundary"]), default="asap", show_default=True
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
        console.print(f"{key}: {snapshot.get(key)}")
    console.print(
        f"usage: {snapshot.get('input_tokens')} in / {snapshot.get('output_tokens')} out, "
        f"${snapshot.get('cost_usd')}"
    )
    messages = snapshot.get("messages")
    if isinstance(messages, list):
        console.print(f"messages: {len(messages)} (last 5)")
        for message in messages[-5:]:
            if isinstance(message, dict):
                text = message.get("text") or message.get("content") or message.get("tool_calls")
                console.print(f"  {message.get('kind')}: {escape(short(str(text), 110))}")


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
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)


cli.add_command(mcp)
cli.add_command(trace)
cli.add_command(cost)


def main() -> None:
    """Entry point of the ``loomkin`` console script."""
    cli()
