"""The ``loomkin`` command: argument parsing only; everything goes through the public API."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from loomkin.cli.bench_web import bench_web_host
from loomkin.cli.cluster import cluster_group
from loomkin.cli.cluster import worker as cluster_worker
from loomkin.cli.common import console, default_store, fail, run_command, shown
from loomkin.cli.control import (
    agent_path,
    call,
    echo_json,
    read_server_info,
    remove_server_info,
    write_server_info,
)
from loomkin.cli.coordination import budget_group, negotiation_group, rendezvous_group
from loomkin.cli.observe import cost, mcp, trace
from loomkin.cli.questions import questions_at_terminal, questions_group
from loomkin.cli.speculation import speculation
from loomkin.cli.store import store_group
from loomkin.cli.team import team_group
from loomkin.errors import LoomkinError, UserError

if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncIterator, Callable

    from loomkin.api import LaunchPolicy
    from loomkin.core.records import PermissionDecision
    from loomkin.service import Loomkin, PendingPermission, PermissionResponder, Session

__all__ = ["default_store", "main"]


def _directory(path: Path, *, must_exist: bool = True, option: str = "--project") -> Path:
    """``path`` resolved; a usage error naming ``option`` when it cannot be a project."""
    try:
        resolved = path.expanduser().resolve()
        exists = resolved.is_dir() if must_exist else not resolved.exists() or resolved.is_dir()
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop, no home
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise click.BadParameter(
            f"cannot use {shown(str(path))}: {reason}", param_hint=option
        ) from None
    if not exists:
        raise click.BadParameter(f"{shown(str(resolved))} is not a directory", param_hint=option)
    return resolved


def _check_pace(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    """Seconds per scripted model call: finite and at most a minute (inf would hang)."""
    if not math.isfinite(value) or not 0 <= value <= 60:
        raise click.BadParameter(f"must be a number of seconds from 0 to 60, got {value}")
    return value


_PORT = click.IntRange(0, 65535)

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
_take_over_option = click.option(
    "--take-over",
    is_flag=True,
    help="Take the session from the process now running it (it stops writing at once).",
)
_api_key_env_option = click.option(
    "--api-key-env",
    metavar="VAR",
    help="The environment variable holding the key for --base-url (without it a custom "
    "--base-url gets no key: OPENAI_API_KEY goes only to OpenAI).",
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
@_api_key_env_option
@click.option("--yes", is_flag=True, help="Allow every write and shell call without asking.")
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
@click.option(
    "--serve",
    "serve_port",
    type=_PORT,
    default=None,
    help="Also serve the web app on this port (0: any free port) for watching and steering; "
    "the printed URL carries its token.",
)
@_otlp_option
@click.option("--session", "session_id", help="Give GOAL to this stored session instead.")
@_take_over_option
def run(
    goal: str,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    api_key_env: str | None,
    yes: bool,
    store: str | None,
    serve_port: int | None,
    otlp: str | None,
    session_id: str | None,
    take_over: bool,
) -> None:
    """Run GOAL with a team of agents on the project, showing live progress."""
    if take_over and session_id is None:
        raise click.UsageError("--take-over needs --session (a new session has no other writer)")
    model = _Model(spec=model_spec, base_url=base_url, api_key_env=api_key_env)
    target = _Target(session_id=session_id, take_over=take_over)
    run_command(_run_goal(goal, _directory(project), model, yes, store, serve_port, otlp, target))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Model:
    """The model options of a command (None: the project's loomkin.toml decides)."""

    spec: str | None
    base_url: str | None
    api_key_env: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    """A stored session to resume instead of a new one (``None``: a new session)."""

    session_id: str | None = None
    take_over: bool = False


async def _run_goal(
    goal: str,
    project: Path,
    model: _Model,
    yes: bool,
    store: str | None,
    serve_port: int | None = None,
    otlp: str | None = None,
    target: _Target = _Target(),
) -> int:
    from loomkin.service import Loomkin

    # Listen first: a port in use must fail before a session is written to the store.
    sockets = _listen("127.0.0.1", serve_port) if serve_port is not None else []
    try:
        async with await Loomkin.open(store or default_store(project)) as loomkin:
            after = 0
            if target.session_id is None:
                session = await _open_configured(loomkin, project, model, title=goal[:80])
            else:
                after = loomkin.last_position
                session = await _resume_configured(loomkin, target, model)
            session.set_permission_responder(_allow_all if yes else _ask_in_terminal())
            console.print(f"[bold]session[/] {session.session_id} on {escape(str(project))}")
            async with _tracing(session, otlp):
                if not sockets:
                    return await _drive(session, goal, after=after, ask_user=not yes)
                launch = _launch_policy((project,), model)
                async with _web_app(
                    loomkin, session, host="127.0.0.1", sockets=sockets, launch=launch
                ):
                    return await _drive(session, goal, after=after, ask_user=not yes)
    finally:
        for sock in sockets:
            sock.close()


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
        f"{escape(', '.join(summary.destinations))}{refused}"
    )


async def _resume_configured(loomkin: Loomkin, target: _Target, model: _Model) -> Session:
    """Resume ``target.session_id`` (default: the newest); settings from its loomkin.toml."""
    sessions = loomkin.sessions()
    if not sessions:
        raise UserError("no stored session in this store; start one with `loomkin run`")
    chosen = target.session_id or sessions[-1].session_id
    factory = None
    if model.spec is None and loomkin.stored_session(chosen).model.startswith("scripted:"):
        from loomkin.demo import demo_model  # a demo session resumes with the demo's script

        factory = demo_model
    return await loomkin.resume_session(
        chosen,
        model=model.spec,
        model_factory=factory,
        base_url=model.base_url,
        api_key_env=model.api_key_env,
        take_over=target.take_over,
    )


async def _open_configured(
    loomkin: Loomkin, project: Path, model: _Model, *, title: str = ""
) -> Session:
    """Open a session on ``project``: the options given here win over its loomkin.toml."""
    return await loomkin.open_session(
        project,
        model=model.spec,
        base_url=model.base_url,
        api_key_env=model.api_key_env,
        title=title,
    )


def _listen(host: str, port: int) -> list[socket.socket]:
    from loomkin.api import listen  # the web stack loads only when asked for

    return listen(host, port)


def _launch_policy(roots: tuple[Path, ...], model: _Model) -> LaunchPolicy:
    """What sessions the web app may open: projects under ``roots``, this model server."""
    from loomkin.api import LaunchPolicy, resolve_roots

    return LaunchPolicy(
        roots=resolve_roots(roots),
        model=model.spec,
        base_url=model.base_url,
        api_key_env=model.api_key_env,
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


async def _drive(
    session: Session, goal: str | None, *, after: int = 0, ask_user: bool = False
) -> int:
    """Send ``goal`` (if any), print events until the session is idle, then the summary.

    With ``ask_user`` and a terminal, the questions agents ask the user are asked here;
    otherwise they wait for an answer from the web page or the API until their deadline.
    """
    printer = asyncio.create_task(_print_events(session, after))
    try:
        async with questions_at_terminal(session, enabled=ask_user):
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
    console.print(f"files changed: {escape(', '.join(summary.files_changed)) or 'none'}")
    for decision in summary.decisions:
        console.print(f"decision: {escape(decision)}")
    console.print(
        f"model calls: {summary.model_calls}, tokens: {summary.input_tokens} in "
        f"({summary.cached_input_tokens} cached) / {summary.output_tokens} out, "
        f"cost: ${summary.cost_usd:.4f}"
    )


@cli.command()
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--session", "session_id", help="Session id (default: the newest one).")
@click.option("--model", "model_spec", help="PROVIDER:MODEL (default: the session's model).")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@_api_key_env_option
@click.option("--yes", is_flag=True, help="Allow every write and shell call without asking.")
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
@_take_over_option
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
    model = _Model(spec=model_spec, base_url=base_url, api_key_env=api_key_env)
    target = _Target(session_id=session_id, take_over=take_over)
    run_command(_resume(_directory(project), target, model, yes, store))


async def _resume(
    project: Path,
    target: _Target,
    model: _Model,
    yes: bool,
    store: str | None,
) -> int:
    from loomkin.service import Loomkin

    async with await Loomkin.open(store or default_store(project)) as loomkin:
        after = loomkin.last_position
        # Settings, permissions and the rest come from the session's loomkin.toml.
        session = await _resume_configured(loomkin, target, model)
        session.set_permission_responder(_allow_all if yes else _ask_in_terminal())
        console.print(f"[bold]resumed[/] session {escape(session.session_id)}")
        paused = [a.name for a in session.agents() if a.status == "paused"]
        if paused:
            names = escape(", ".join(paused))
            console.print(f"paused agents stay paused: {names} (loomkin agent resume)")
        return await _drive(session, None, after=after, ask_user=not yes)


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
    callback=_check_pace,
    help="Real seconds each scripted model call takes (0 to 60).",
)
@_otlp_option
def demo(project: Path | None, pace: float, otlp: str | None) -> None:
    """Run the bundled demo on a sample project with a scripted (simulated) model."""
    target = _directory(project, must_exist=False) if project is not None else None
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
        async with _tracing(session, otlp):
            return await _drive(session, None)


@contextlib.asynccontextmanager
async def _web_app(
    loomkin: Loomkin,
    session: Session,
    *,
    host: str,
    sockets: list[socket.socket],
    launch: LaunchPolicy,
    token: str | None = None,
    no_token: bool = False,
    allowed_hosts: tuple[str, ...] = (),
) -> AsyncIterator[str]:
    """Serve the web app while the block runs; record it for ``loomkin agent`` commands."""
    from loomkin.api import generate_token, serve  # the web stack loads only when asked for

    chosen = None if no_token else token or generate_token()
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

    server = asyncio.create_task(
        serve(
            loomkin,
            host=host,
            token=chosen,
            no_token=no_token,
            allowed_hosts=allowed_hosts,
            launch=launch,
            sockets=sockets,
            ready=ready,
        )
    )
    server.add_done_callback(stopped)
    project = Path(session.project_root)
    url = ""
    try:
        url = await listening
        info = write_server_info(project, url=url, session_id=session.session_id, token=chosen)
        console.print(f"[bold]web app[/] {escape(url)}")
        console.print(
            f"  open it in your browser; agent controls: loomkin agent --help ({escape(str(info))})"
        )
        if no_token:
            console.print(
                "[bold yellow]--no-token[/]: no token is asked for, so any program or user on "
                "this machine that can connect to this port can read your sessions and drive "
                "your agents (web pages still cannot: Host and Origin are checked). Use it for "
                "tests only."
            )
        yield url
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        if url:
            await asyncio.to_thread(
                remove_server_info, project, session_id=session.session_id, url=url
            )


@cli.command()
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project to work on (with --demo: where to put the sample project).",
)
@click.option("--model", "model_spec", help="PROVIDER:MODEL for the agents.")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@_api_key_env_option
@click.option("--demo", is_flag=True, help="Serve the demo scenario (scripted model, no key).")
@click.option(
    "--pace",
    type=float,
    default=0.3,
    show_default=True,
    callback=_check_pace,
    help="With --demo: real seconds each scripted model call takes (0 to 60).",
)
@click.option(
    "--no-auto-approve",
    is_flag=True,
    help="With --demo: answer the permission prompts yourself, in the page.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=_PORT, default=8765, show_default=True)
@click.option(
    "--token",
    envvar="LOOMKIN_TOKEN",
    help="The token every request must carry (env LOOMKIN_TOKEN; default: a new random one, "
    "in the printed URL).",
)
@click.option(
    "--no-token",
    is_flag=True,
    help="Ask for no token (tests only): any local program or user could drive your agents.",
)
@click.option(
    "--allow-root",
    "allow_roots",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also let the page open sessions on projects under DIR (repeatable; --project is "
    "always allowed).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests addressed to host NAME (repeatable; localhost, 127.0.0.1, "
    "[::1] and --host always are).",
)
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
@click.option("--session", "session_id", help="Serve this stored session (resumed) instead.")
@_take_over_option
def serve(
    project: Path | None,
    model_spec: str | None,
    base_url: str | None,
    api_key_env: str | None,
    demo: bool,
    pace: float,
    no_auto_approve: bool,
    host: str,
    port: int,
    token: str | None,
    no_token: bool,
    allow_roots: tuple[Path, ...],
    allow_hosts: tuple[str, ...],
    store: str | None,
    session_id: str | None,
    take_over: bool,
) -> None:
    """Serve the web app: chat, live feed, agent cards, team tree, task graph, controls."""
    from loomkin.api.access import check_token, host_names
    from loomkin.api.server import is_loopback

    if no_token and token:
        raise click.UsageError("--no-token and --token (or LOOMKIN_TOKEN) exclude each other")
    if no_token and not is_loopback(host):
        raise click.UsageError("--no-token is for loopback addresses only (tests)")
    if project is None and not demo:
        raise click.UsageError("pass --project DIR (or --demo)")
    if take_over and session_id is None:
        raise click.UsageError("--take-over needs --session (a new session has no other writer)")
    if demo and session_id is not None:
        raise click.UsageError("--demo starts a new demo session; drop --session")
    try:
        if token is not None:
            check_token(token)
        host_names(host, allow_hosts)
    except LoomkinError as exc:
        fail(str(exc))
    root = _directory(project, must_exist=not demo) if project is not None else None
    roots = tuple(_directory(r, option="--allow-root") for r in allow_roots)
    options = _ServeOptions(
        model=_Model(spec=model_spec, base_url=base_url, api_key_env=api_key_env),
        demo=demo,
        pace=pace,
        auto_approve=not no_auto_approve,
        host=host,
        port=port,
        token=token,
        no_token=no_token,
        roots=roots,
        allow_hosts=allow_hosts,
        store=store,
        target=_Target(session_id=session_id, take_over=take_over),
    )
    run_command(_serve(root, options))


@dataclass(frozen=True, slots=True, kw_only=True)
class _ServeOptions:
    """The options of ``loomkin serve`` (one object: there are many)."""

    model: _Model
    demo: bool
    pace: float
    auto_approve: bool
    host: str
    port: int
    token: str | None
    no_token: bool
    roots: tuple[Path, ...]
    allow_hosts: tuple[str, ...]
    store: str | None
    target: _Target


async def _serve(project: Path | None, options: _ServeOptions) -> int:
    from loomkin.service import Loomkin

    # Listen first: a port in use must fail before a session is written to the store.
    sockets = _listen(options.host, options.port)
    try:
        if options.demo:
            from loomkin.demo import copy_sample_project, start_demo

            root = await asyncio.to_thread(copy_sample_project, project)
            console.print(
                f"[bold yellow]SIMULATED[/] demo on a sample project at {escape(str(root))}"
            )
        else:
            assert project is not None
            root = project
        launch = _launch_policy((root, *options.roots), options.model)
        async with await Loomkin.open(options.store or default_store(root)) as loomkin:
            if options.demo:
                session = await start_demo(
                    loomkin, project=root, auto_approve=options.auto_approve, pace_s=options.pace
                )
            elif options.target.session_id is not None:
                session = await _resume_configured(loomkin, options.target, options.model)
            else:
                session = await _open_configured(loomkin, root, options.model)
            async with _web_app(
                loomkin,
                session,
                host=options.host,
                sockets=sockets,
                launch=launch,
                token=options.token,
                no_token=options.no_token,
                allowed_hosts=options.allow_hosts,
            ):
                await asyncio.Event().wait()  # until Ctrl-C
    finally:
        for sock in sockets:
            sock.close()
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
                text = message.get("text") or message.get("content") or message.get("tool_calls")
                kind = escape(str(message.get("kind")))
                console.print(f"  {kind}: {escape(short(str(text), 110))}")


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
