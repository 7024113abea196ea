"""``loomkin worker`` and ``loomkin cluster …``: agents on several workers (NATS + Postgres)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from loomkin.cli.common import console, run_command
from loomkin.cli.questions import answer_cluster_questions_here

if TYPE_CHECKING:
    from loomkin.cluster import ClusterClient
    from loomkin.core.records import PermissionDecision

__all__ = ["cluster_group", "worker"]

_BUS = click.option("--bus", required=True, help="The NATS server, e.g. nats://127.0.0.1:4222.")
_STORE = click.option("--store", required=True, help="The shared store: postgresql://…")
_CLUSTER = click.option("--cluster", default="loomkin", show_default=True, help="Cluster name.")
_TTL = click.option(
    "--lease-ttl", type=float, default=10.0, show_default=True, help="Lease TTL in seconds."
)


@click.command("worker")
@_STORE
@_BUS
@_CLUSTER
@_TTL
@click.option("--capacity", type=int, default=100, show_default=True, help="Agents to host.")
@click.option("--id", "worker_id", default=None, help="This worker's id (default: a new one).")
def worker(
    store: str, bus: str, cluster: str, lease_ttl: float, capacity: int, worker_id: str | None
) -> None:
    """Host agents of any session of the cluster until stopped (Ctrl-C hands them over)."""
    run_command(_worker(store, bus, cluster, lease_ttl, capacity, worker_id))


async def _worker(
    store: str, bus: str, cluster: str, ttl: float, capacity: int, worker_id: str | None
) -> int:
    from loomkin.cluster import HostOptions, Worker
    from loomkin.tools.permissions import PermissionPolicy

    options = HostOptions(
        store_url=store, ttl_s=ttl, approve_all=PermissionPolicy(auto_approve=frozenset({"*"}))
    )
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
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=".")
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
    """Run GOAL on the least-loaded worker and follow it to the end."""
    run_command(
        _run(goal, store, bus, cluster, lease_ttl, project.resolve(), model, yes=yes, host=host)
    )


async def _run(
    goal: str,
    store: str,
    bus: str,
    cluster: str,
    ttl: float,
    project: Path,
    model: str | None,
    *,
    yes: bool,
    host: bool,
) -> int:
    from loomkin.cluster import ClusterClient, HostOptions, Worker
    from loomkin.tools.permissions import PermissionPolicy

    node = None
    if host:
        options = HostOptions(
            store_url=store, ttl_s=ttl, approve_all=PermissionPolicy(auto_approve=frozenset({"*"}))
        )
        node = Worker(bus, options, cluster=cluster)
        await node.start()
    try:
        async with await ClusterClient.connect(bus, store, cluster=cluster, ttl_s=ttl) as client:
            session_id, worker_id = await client.start_session(
                str(project), goal, model=model, approve_all=yes
            )
            console.print(f"session {session_id} on worker {escape(worker_id)}")
            if not yes:
                await client.answer_permissions(session_id, _ask)
            await answer_cluster_questions_here(client, session_id, enabled=not yes)
            await _follow(client, session_id)
            placement = await client.placement(session_id)
            console.print(f"done; hosted by {escape(', '.join(placement.hosts))}")
    finally:
        if node is not None:
            await node.close()
    return 0


async def _ask(ask: dict[str, str]) -> PermissionDecision:
    question = (
        f"{ask['agent']} wants {ask['tool']} on {ask['target']}: allow? [o]nce/[a]lways/[d]eny"
    )
    answer = await asyncio.to_thread(click.prompt, question, default="d")
    decisions: dict[str, PermissionDecision] = {"o": "allow_once", "a": "allow_always"}
    return decisions.get(str(answer)[:1].lower(), "deny")


async def _follow(client: ClusterClient, session_id: str) -> None:
    async for recorded in client.follow(session_id):
        event = recorded.event
        who = getattr(event, "agent_id", "") or ""
        console.print(f"[dim]{recorded.position:>6}[/] {escape(event.kind)} {escape(str(who))}")


@cluster_group.command("status")
@_STORE
@_BUS
@_CLUSTER
@_TTL
def cluster_status(store: str, bus: str, cluster: str, lease_ttl: float) -> None:
    """List the live workers with their load, and the sessions with where they run."""
    run_command(_status(store, bus, cluster, lease_ttl))


async def _status(store: str, bus: str, cluster: str, ttl: float) -> int:
    from loomkin.cluster import ClusterClient

    async with await ClusterClient.connect(bus, store, cluster=cluster, ttl_s=ttl) as client:
        for w in await client.workers():
            state = "accepting" if w.accepting else "leaving"
            console.print(
                f"worker {escape(w.worker_id)}: {w.agents} agents in {w.sessions} sessions "
                f"(capacity {w.capacity}, {state})"
            )
        for p in await client.placements():
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
    run_command(_control(session_id, agent, action, text, store, bus, cluster, lease_ttl))


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
        request = await client.control(session_id, action, agent, text=text)  # type: ignore[arg-type]
        console.print(f"{action} {escape(agent)}: request {request}")
    return 0
