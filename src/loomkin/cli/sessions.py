"""What ``run``, ``serve``, ``resume`` and ``demo`` share: options, model choice, progress, the app.

Argument parsing and printing only; everything goes through the facade (``loomkin.service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from loomkin.cli.common import console, shown
from loomkin.cli.control import remove_server_info, write_server_info
from loomkin.cli.outcome import failed_agents
from loomkin.errors import UserError

if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from loomkin.api import ClusterView, LaunchPolicy
    from loomkin.core.events import RecordedEvent
    from loomkin.core.records import PermissionDecision
    from loomkin.service import Loomkin, PendingPermission, PermissionResponder, Session

__all__ = [
    "OTLP_FROM_ENV",
    "PORT",
    "ModelChoice",
    "Target",
    "allow_all",
    "api_key_env_option",
    "ask_in_terminal",
    "check_pace",
    "cluster_flags",
    "drive",
    "launch_policy",
    "listen_on",
    "open_configured",
    "otlp_option",
    "print_summary",
    "project_dir",
    "report_failures",
    "resume_configured",
    "take_over_option",
    "tracing",
    "web_app",
]


def project_dir(path: Path, *, must_exist: bool = True, option: str = "--project") -> Path:
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


def check_pace(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    """Seconds per scripted model call: finite and at most a minute (inf would hang)."""
    if not math.isfinite(value) or not 0 <= value <= 60:
        raise click.BadParameter(f"must be a number of seconds from 0 to 60, got {value}")
    return value


PORT = click.IntRange(0, 65535)

OTLP_FROM_ENV = "env"
"""``--otlp`` given without a URL: the OTEL_EXPORTER_OTLP_* variables say where to."""

otlp_option = click.option(
    "--otlp",
    metavar="URL",
    is_flag=False,
    flag_value=OTLP_FROM_ENV,
    default=None,
    help="Export the trace as the session runs to this OTLP/HTTP collector (alone: where "
    "OTEL_EXPORTER_OTLP_* say). Needs the otel extra.",
)
take_over_option = click.option(
    "--take-over",
    is_flag=True,
    help="Take the session from the process now running it (it stops writing at once).",
)
api_key_env_option = click.option(
    "--api-key-env",
    metavar="VAR",
    help="The environment variable holding the key for --base-url (without it a custom "
    "--base-url gets no key: OPENAI_API_KEY goes only to OpenAI).",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelChoice:
    """The model options of a command (None: the project's loomkin.toml decides)."""

    spec: str | None
    base_url: str | None
    api_key_env: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A stored session to resume instead of a new one (``None``: a new session)."""

    session_id: str | None = None
    take_over: bool = False


@contextlib.asynccontextmanager
async def tracing(session: Session, otlp: str | None) -> AsyncIterator[None]:
    """With ``--otlp``: export the session's spans as its events arrive, then say what went."""
    if otlp is None:
        yield
        return
    from loomkin.service import live_trace

    endpoint = None if otlp == OTLP_FROM_ENV else otlp
    async with live_trace(session, otlp_endpoint=endpoint) as traced:
        yield
    summary = traced.summary
    assert summary is not None  # set when the block ends normally
    refused = f", {summary.failed} not accepted (see the log)" if summary.failed else ""
    console.print(
        f"trace {summary.trace_id}: {summary.spans} spans sent to "
        f"{escape(', '.join(summary.destinations))}{refused}"
    )


async def resume_configured(loomkin: Loomkin, target: Target, model: ModelChoice) -> Session:
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


async def open_configured(
    loomkin: Loomkin, project: Path, model: ModelChoice, *, title: str = ""
) -> Session:
    """Open a session on ``project``: the options given here win over its loomkin.toml."""
    return await loomkin.open_session(
        project,
        model=model.spec,
        base_url=model.base_url,
        api_key_env=model.api_key_env,
        title=title,
    )


def listen_on(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``host:port`` (before anything is written to a store)."""
    from loomkin.api import listen  # the web stack loads only when asked for

    return listen(host, port)


def launch_policy(roots: tuple[Path, ...], model: ModelChoice) -> LaunchPolicy:
    """What sessions the web app may open: projects under ``roots``, this model server."""
    from loomkin.api import LaunchPolicy, resolve_roots

    return LaunchPolicy(
        roots=resolve_roots(roots),
        model=model.spec,
        base_url=model.base_url,
        api_key_env=model.api_key_env,
    )


async def allow_all(_prompt: PendingPermission) -> PermissionDecision:
    """``--yes``: every prompt is allowed once."""
    return "allow_once"


_ANSWERS: dict[str, PermissionDecision] = {"o": "allow_once", "a": "allow_always", "d": "deny"}


def ask_in_terminal() -> PermissionResponder:
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


async def drive(
    session: Session,
    goal: str | None,
    *,
    after: int = 0,
    ask_user: bool = False,
    hold_paused: bool = False,
) -> int:
    """Send ``goal`` (if any), print events until the session is idle, then the summary.

    With ``ask_user`` and a terminal, the questions agents ask the user are asked here;
    otherwise they wait for an answer from the web page or the API until their deadline.
    With ``hold_paused`` (a web app serves the session, so a paused agent can be resumed)
    the run also waits while an agent is paused, instead of ending with it paused.
    """
    from loomkin.cli.questions import questions_at_terminal

    printer = asyncio.create_task(_print_events(session, after))
    try:
        async with questions_at_terminal(session, enabled=ask_user):
            if goal is not None:
                await session.send(goal)
            if hold_paused:
                await _wait_finished(session)
            else:
                await session.wait_idle()
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    await print_summary(session)
    return report_failures(await session.history(after=after))


async def _wait_finished(session: Session) -> None:
    """:meth:`Session.wait_finished`, saying once why the run goes on while agents are paused."""
    await session.wait_idle()
    paused = [agent.name for agent in session.agents() if agent.status == "paused"]
    if paused:
        names = escape(", ".join(paused))
        console.print(
            f"[yellow]waiting[/]: {names} paused; resume from the web app or with "
            "`loomkin agent resume NAME`, or stop with Ctrl-C"
        )
    await session.wait_finished()


async def _print_events(session: Session, after: int) -> None:
    from loomkin.cli.progress import describe

    async with session.events(after=after) as events:
        async for recorded in events:
            line = describe(recorded.event, session)
            if line is not None:
                console.print(line)


def report_failures(history: list[RecordedEvent]) -> int:
    """Print the agents whose work ended in an error; the run's exit status (0 or 1)."""
    failed = failed_agents(r.event for r in history)
    for name, why in failed:
        console.print(f"[red]failed[/] {escape(name)}: {escape(why)}")
    return 1 if failed else 0


async def print_summary(session: Session) -> None:
    """The session's summary under a rule: tasks, files, decisions, usage."""
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


@contextlib.asynccontextmanager
async def web_app(
    loomkin: Loomkin,
    project: Path | None,
    session_id: str,
    *,
    host: str,
    sockets: list[socket.socket],
    launch: LaunchPolicy,
    token: str | None = None,
    no_token: bool = False,
    allowed_hosts: tuple[str, ...] = (),
    cluster: ClusterView | None = None,
) -> AsyncIterator[str]:
    """Serve the web app while the block runs.

    It is recorded in ``project`` (when given) for ``loomkin agent`` commands, with
    ``session_id`` as their default session.
    """
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
            cluster=cluster,
        )
    )
    server.add_done_callback(stopped)
    url = ""
    try:
        url = await listening
        # Recorded before the URL is printed: whoever reads the URL finds the record.
        info = None
        if project is not None:
            info = write_server_info(project, url=url, session_id=session_id, token=chosen)
        console.print(f"[bold]web app[/] {escape(url)}")
        if info is not None:
            console.print(
                "  open it in your browser; agent controls: loomkin agent --help "
                f"({escape(str(info))})"
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
        if url and project is not None:
            await asyncio.to_thread(remove_server_info, project, session_id=session_id, url=url)


def cluster_flags(command: Callable[..., None]) -> Callable[..., None]:
    """``--bus``, ``--cluster``, ``--lease-ttl``, ``--no-host``: sessions on a cluster's workers.

    Checked by :func:`loomkin.cli.cluster.cluster_options`.
    """
    flags = (
        click.option(
            "--bus",
            metavar="URL",
            default=None,
            help="Run sessions on a cluster's workers: its NATS server, e.g. "
            "nats://127.0.0.1:4222 (needs --store postgresql://…).",
        ),
        click.option("--cluster", default=None, help="With --bus: the cluster's name [loomkin]."),
        click.option(
            "--lease-ttl", type=float, default=None, help="With --bus: lease TTL in seconds [10]."
        ),
        click.option("--no-host", is_flag=True, help="With --bus: host no agents here."),
    )
    for flag in reversed(flags):
        command = flag(command)
    return command
