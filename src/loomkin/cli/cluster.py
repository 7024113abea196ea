"""``loomkin worker`` and ``loomkin cluster …``: agents on several workers (NATS + Postgres)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click
from rich.markup import escape

from loomkin.cli.common import console, counted, run_command, shown
from loomkin.cli.questions import answer_cluster_questions_here
from loomkin.cli.sessions import report_failures
from loomkin.errors import UserError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.cluster import ClusterClient, HostOptions
    from loomkin.core.records import PermissionDecision
    from loomkin.service import AgentInfo, Loomkin, Names

DEFAULT_CLUSTER = "loomkin"
"""The cluster's name when ``--cluster`` is not given (``loomkin.cluster.DEFAULT_CLUSTER``)."""

__all__ = [
    "ON_CLUSTER",
    "ClusterOptions",
    "cluster_group",
    "cluster_options",
    "connect_client",
    "hosting",
    "run_on_cluster",
    "worker",
    "worker_options",
]

ON_CLUSTER = "the session goes on on the cluster's workers (loomkin cluster status)"
"""What Ctrl-C of a run on a cluster leaves behind: the run, without this terminal."""

_POSTGRES = ("postgresql", "postgres", "postgresql+psycopg")
"""The URL schemes of a Postgres store."""


def _shared_store(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A cluster's store is the Postgres every process shares (a file would be this one's)."""
    if urlsplit(value).scheme not in _POSTGRES:
        raise click.BadParameter(
            f"must be the Postgres store every worker shares, postgresql://USER@HOST/DB, "
            f"not {shown(value)!r}"
        )
    return value


_BUS = click.option("--bus", required=True, help="The NATS server, e.g. nats://127.0.0.1:4222.")
_STORE = click.option(
    "--store", required=True, callback=_shared_store, help="The shared store: postgresql://…"
)
_CLUSTER = click.option("--cluster", default="loomkin", show_default=True, help="Cluster name.")
_TTL = click.option(
    "--lease-ttl", type=float, default=10.0, show_default=True, help="Lease TTL in seconds."
)


def _positive_seconds(
    _ctx: click.Context, param: click.Parameter, value: float | None
) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"must be a positive number of seconds, got {value}")
    return value


@click.command("worker")
@_STORE
@_BUS
@_CLUSTER
@click.option(
    "--lease-ttl",
    type=float,
    default=10.0,
    show_default=True,
    callback=_positive_seconds,
    help="Lease TTL in seconds (the same for every process of the cluster).",
)
@click.option("--capacity", type=int, default=100, show_default=True, help="Agents to host.")
@click.option("--id", "worker_id", default=None, help="This worker's id (default: a new one).")
@click.option(
    "--stall-s",
    type=float,
    default=None,
    metavar="SECONDS",
    callback=_positive_seconds,
    help="Stop a hosted session's agents here once its lease could not be renewed for this "
    "long (cut off from NATS, or the process was frozen): another worker may have taken it "
    "over. Default: the lease TTL.",
)
def worker(
    store: str,
    bus: str,
    cluster: str,
    lease_ttl: float,
    capacity: int,
    worker_id: str | None,
    stall_s: float | None,
) -> None:
    """Host agents of any session of the cluster until stopped (Ctrl-C hands them over).

    A session whose lease could not be renewed for --stall-s (the lease TTL unless given)
    stops its agents here by itself; the store refuses whatever they would still write
    once another worker took the session.
    """
    options = worker_options(store, lease_ttl=lease_ttl, stall_s=stall_s)
    run_command(_worker(bus, cluster, options, capacity, worker_id), interrupted=None)


def worker_options(store: str, *, lease_ttl: float, stall_s: float | None) -> HostOptions:
    """How ``loomkin worker`` hosts sessions: every permission of a ``--yes`` session granted."""
    from loomkin.cluster import HostOptions
    from loomkin.tools.permissions import PermissionPolicy

    return HostOptions(
        store_url=store,
        ttl_s=lease_ttl,
        stall_s=stall_s,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
    )


async def _worker(
    bus: str, cluster: str, options: HostOptions, capacity: int, worker_id: str | None
) -> int:
    from loomkin.cluster import Worker

    node = Worker(bus, options, cluster=cluster, worker_id=worker_id, capacity=capacity)
    await node.start()
    console.print(f"worker {escape(node.worker_id)} on cluster {escape(cluster)} ({escape(bus)})")
    try:
        await asyncio.Event().wait()  # until Ctrl-C or SIGTERM cancels it
    finally:
        await node.close()
        console.print(f"worker {escape(node.worker_id)} left; its sessions were handed over")
    return 0


@click.group("cluster")
def cluster_group() -> None:
    """Run goals on the workers of a cluster, see where sessions run, control their agents."""


@cluster_group.command("run")
@click.argument("goal")
@_STORE
@_BUS
@_CLUSTER
@_TTL
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project the agents work on (at the same path on every worker).",
)
@click.option("--model", default=None, help="provider:model (default: loomkin.toml).")
@click.option("--yes", is_flag=True, help="Allow every write and shell call.")
@click.option("--host/--no-host", default=True, help="Host agents in this process too.")
def cluster_run(
    goal: str,
    store: str,
    bus: str,
    cluster: str,
    lease_ttl: float,
    project: Path,
    model: str | None,
    yes: bool,
    host: bool,
) -> None:
    """Run GOAL on the least-loaded worker and follow it to the end (= run --bus)."""
    options = cluster_options(
        store=store, bus=bus, cluster=cluster, lease_ttl=lease_ttl, no_host=not host
    )
    assert options is not None  # --bus is required here
    run_command(
        run_on_cluster(goal, project.resolve(), options, model=model, yes=yes),
        interrupted=ON_CLUSTER,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterOptions:
    """Where a cluster is, and whether this process hosts agents too.

    A cluster is its shared store, its NATS server, its name and its lease TTL.
    """

    store: str
    bus: str
    cluster: str = DEFAULT_CLUSTER
    lease_ttl: float = 10.0
    host: bool = True


def cluster_options(
    *,
    store: str | None,
    bus: str | None,
    cluster: str | None,
    lease_ttl: float | None,
    no_host: bool,
) -> ClusterOptions | None:
    """The cluster options of a command, checked; ``None`` without ``--bus`` (embedded).

    Raises:
        click.UsageError: a cluster option without ``--bus``, or ``--bus`` without a
            Postgres ``--store``.
        click.BadParameter: a value that cannot work (naming its option).
    """
    from loomkin.cluster.bus import check_bus_url  # the cluster loads only when asked for
    from loomkin.cluster.names import ClusterNames

    if bus is None:
        given = [
            flag
            for flag, value in (("--cluster", cluster), ("--lease-ttl", lease_ttl))
            if value is not None
        ]
        if no_host:
            given.append("--no-host")
        if given:
            raise click.UsageError(
                f"{given[0]} needs --bus nats://HOST:4222 (it runs the session on a cluster)"
            )
        return None
    if not store or urlsplit(store).scheme not in _POSTGRES:
        what = f"not {shown(store)!r}" if store else "none was given"
        raise click.UsageError(
            f"--bus needs --store postgresql://USER@HOST/DB, the store every worker shares ({what})"
        )
    try:
        check_bus_url(bus)
    except UserError as exc:
        raise click.BadParameter(str(exc), param_hint="--bus") from None
    name = cluster if cluster is not None else DEFAULT_CLUSTER
    try:
        ClusterNames(name)
    except UserError as exc:
        raise click.BadParameter(str(exc), param_hint="--cluster") from None
    ttl = lease_ttl if lease_ttl is not None else 10.0
    if not math.isfinite(ttl) or ttl <= 0:
        raise click.BadParameter(
            f"must be a positive number of seconds, got {ttl}", param_hint="--lease-ttl"
        )
    return ClusterOptions(store=store, bus=bus, cluster=name, lease_ttl=ttl, host=not no_host)


@contextlib.asynccontextmanager
async def hosting(options: ClusterOptions) -> AsyncIterator[str | None]:
    """A worker in this process while the block runs (unless ``--no-host``); its id."""
    if not options.host:
        yield None
        return
    from loomkin.cluster import HostOptions, Worker
    from loomkin.tools.permissions import PermissionPolicy

    host = HostOptions(
        store_url=options.store,
        ttl_s=options.lease_ttl,
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
    )
    node = Worker(options.bus, host, cluster=options.cluster)
    await node.start()
    try:
        yield node.worker_id
    finally:
        await node.close()


async def connect_client(options: ClusterOptions) -> ClusterClient:
    """A client of the cluster (NATS and the shared store)."""
    from loomkin.cluster import ClusterClient

    return await ClusterClient.connect(
        options.bus, options.store, cluster=options.cluster, ttl_s=options.lease_ttl
    )


async def run_on_cluster(
    goal: str, project: Path, options: ClusterOptions, *, model: str | None, yes: bool
) -> int:
    """Run ``goal`` on the least-loaded worker, print its progress until it is done.

    ``loomkin run --bus`` and ``loomkin cluster run``. Progress lines are the embedded
    ``run``'s: the events come from the shared store, folded into a runtime that only
    watches it (for the names of agents and tasks).
    """
    from loomkin.service import Loomkin

    async with (
        hosting(options) as here,
        await connect_client(options) as client,
        await Loomkin.open(options.store) as watcher,
    ):
        if here is not None:
            console.print(f"[dim]this process hosts agents too, as worker {escape(here)}[/]")
        session_id, worker_id = await client.start_session(
            str(project), goal, model=model, title=goal[:80], approve_all=yes
        )
        console.print(
            f"[bold]session[/] {session_id} on {escape(str(project))} (worker {escape(worker_id)})"
        )
        asks = None if yes else await client.answer_permissions(session_id, _ask)
        await answer_cluster_questions_here(client, session_id, enabled=not yes)
        try:
            await _follow(client, watcher, session_id, project)
        finally:
            if asks is not None:
                await asks.unsubscribe()
        placement = await client.placement(session_id)
        console.print(f"hosted by {escape(' → '.join(placement.hosts))}")
        await _print_summary(watcher, session_id, project)
        return report_failures(await watcher.history(session_id))


async def _ask(ask: dict[str, str]) -> PermissionDecision:
    what = f"{ask.get('tool', '')} {ask.get('target', '')}".strip()
    if not sys.stdin.isatty():
        console.print(
            f"[yellow]denied[/] {escape(ask.get('agent', ''))}: {escape(what)} (no terminal to "
            "ask; pass --yes to allow writes and shell commands)"
        )
        return "deny"
    question = f"{ask.get('agent', '')} wants to run {what}. Allow? [o]nce / [a]lways / [d]eny"
    answer = await asyncio.to_thread(click.prompt, question, default="d")
    decisions: dict[str, PermissionDecision] = {"o": "allow_once", "a": "allow_always"}
    return decisions.get(str(answer)[:1].lower(), "deny")


class _StoredView:
    """A session of the cluster as the watching runtime knows it (for progress lines)."""

    def __init__(self, watcher: Loomkin, session_id: str, project: Path) -> None:
        self._watcher = watcher
        self._session_id = session_id
        self.project_root = str(project)

    def names(self) -> Names:
        return self._watcher.names()

    def agents(self) -> list[AgentInfo]:
        return self._watcher.stored_agents(self._session_id)


async def _follow(client: ClusterClient, watcher: Loomkin, session_id: str, project: Path) -> None:
    from loomkin.cli.progress import describe

    view = _StoredView(watcher, session_id, project)
    async with contextlib.aclosing(client.follow(session_id)) as events:
        async for recorded in events:
            if recorded.position > watcher.last_position:
                await watcher.pull()  # one read for every event committed since
            line = describe(recorded.event, view)
            if line is not None:
                console.print(line)


async def _print_summary(watcher: Loomkin, session_id: str, project: Path) -> None:
    from loomkin.core.events import ToolCallCompleted, ToolCallStarted

    await watcher.pull()
    tasks: dict[str, int] = {}
    for task in watcher.tasks(session_id):
        tasks[task.status] = tasks.get(task.status, 0) + 1
    writes: dict[str, str] = {}
    files: dict[str, None] = {}
    root = str(project).rstrip("/") + "/"
    for recorded in await watcher.history(session_id):
        event = recorded.event
        if isinstance(event, ToolCallStarted) and event.tool in ("file_write", "file_edit"):
            writes[event.call_id] = event.target
        elif isinstance(event, ToolCallCompleted) and event.outcome == "ok":
            target = writes.get(event.call_id)
            if target:
                files[target.removeprefix(root)] = None
    spend = await watcher.spend(session_id)
    console.rule("summary")
    shown_tasks = ", ".join(f"{n} {status}" for status, n in sorted(tasks.items())) or "none"
    console.print(f"tasks: {shown_tasks}")
    console.print(f"files changed: {escape(', '.join(files)) or 'none'}")
    console.print(
        f"model calls: {spend.model_calls}, tokens: {spend.input_tokens} in "
        f"({spend.cached_input_tokens} cached) / {spend.output_tokens} out, "
        f"cost: ${spend.cost_usd:.4f}"
    )


@cluster_group.command("status")
@_STORE
@_BUS
@_CLUSTER
@_TTL
def cluster_status(store: str, bus: str, cluster: str, lease_ttl: float) -> None:
    """List the live workers with their load, and the sessions with where they run."""
    run_command(_status(store, bus, cluster, lease_ttl), interrupted="")


async def _status(store: str, bus: str, cluster: str, ttl: float) -> int:
    from loomkin.cluster import ClusterClient

    async with await ClusterClient.connect(bus, store, cluster=cluster, ttl_s=ttl) as client:
        workers = await client.workers()
        if not workers:  # say so: an empty answer looks like a command that did nothing
            console.print(
                f"no live workers on cluster {escape(cluster)} (start one with `loomkin worker`)"
            )
        for w in workers:
            state = "accepting" if w.accepting else "leaving"
            console.print(
                f"worker {escape(w.worker_id)}: {counted(w.agents, 'agent')} in "
                f"{counted(w.sessions, 'session')} "
                f"(capacity {w.capacity}, {state})"
            )
        placements = await client.placements()
        if not placements:
            console.print(f"no sessions on cluster {escape(cluster)} yet")
        for p in placements:
            hosts = " → ".join(p.hosts)
            console.print(f"session {p.session_id}: {p.status} on {escape(hosts)}")
    return 0


@cluster_group.command("control")
@click.argument("session_id")
@click.argument("agent")
@click.argument("action", type=click.Choice(["pause", "resume", "steer", "cancel"]))
@click.option("--text", default=None, help="The guidance, for steer.")
@_STORE
@_BUS
@_CLUSTER
@_TTL
def cluster_control(
    session_id: str,
    agent: str,
    action: str,
    text: str | None,
    store: str,
    bus: str,
    cluster: str,
    lease_ttl: float,
) -> None:
    """Pause, resume, steer or cancel AGENT of SESSION_ID, on whichever worker hosts it."""
    if (action == "steer") != (text is not None):
        raise click.UsageError(
            "steer needs --text GUIDANCE" if action == "steer" else "--text is only for steer"
        )
    run_command(
        _control(session_id, agent, action, text, store, bus, cluster, lease_ttl), interrupted=""
    )


async def _control(
    session_id: str,
    agent: str,
    action: str,
    text: str | None,
    store: str,
    bus: str,
    cluster: str,
    ttl: float,
) -> int:
    from loomkin.cluster import ClusterClient

    async with await ClusterClient.connect(bus, store, cluster=cluster, ttl_s=ttl) as client:
        # Ask only where a worker can answer: otherwise the request waits out its 30 s.
        placement = await client.placement(session_id)  # NotFound names the session
        if placement.status == "done":
            raise UserError(f"session {session_id!r} is done: no worker runs its agents")
        request = await client.control(session_id, action, agent, text=text)  # type: ignore[arg-type]
        console.print(f"{action} {escape(agent)}: request {request}")
    return 0
