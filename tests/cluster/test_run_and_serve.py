"""``loomkin run --bus`` and ``serve --bus`` on the real NATS server and Postgres.

The sessions run on a worker of the test (scripted models); ``run`` is the real command in a
subprocess, the web app the real app on a runtime that only watches the shared store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.faults_child import STEPS, WORKERS, ensure_work
from loomkin.cluster import ClusterClient, Worker
from loomkin.core.events import PermissionResolved, ToolCallStarted

from .coders import TTL, options, served, side_lines, start_worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from loomkin.core.records import PermissionDecision
    from loomkin.service import Session

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(150)]


async def one_worker(session: Session) -> None:
    """Only ``ann`` with her task: few permission prompts to answer from the page."""
    if not session.tasks():
        await session.spawn_agent("ann", "coder")
        await session.create_task("task-ann", assign_to="ann")


@contextlib.asynccontextmanager
async def worker(
    bus_url: str,
    cluster: str,
    pg_url: str,
    *,
    latency_s: float = 0.0,
    prepare: Callable[[Session], Awaitable[None]] | None = ensure_work,
    capacity: int = 100,
) -> AsyncIterator[Worker]:
    hosting = options(pg_url, latency_s, prepare=prepare)
    node = await start_worker(bus_url, cluster, hosting, capacity=capacity)
    try:
        yield node
    finally:
        await node.close()


@pytest.mark.parametrize("host", [False, True], ids=["no-host", "host"])
async def test_run_with_bus_runs_the_goal_on_a_worker_and_prints_its_progress(
    bus_url: str, cluster: str, pg_url: str, project: Path, host: bool
) -> None:
    # Ten times the capacity of the worker `run` starts in its own process (which has no
    # scripted model): placement picks this one.
    async with worker(bus_url, cluster, pg_url, capacity=1000) as node:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loomkin.cli", "run", "append the lines",
            "--project", str(project), "--yes", "--store", pg_url, "--bus", bus_url,
            "--cluster", cluster, "--lease-ttl", str(TTL), *([] if host else ["--no-host"]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        await asyncio.wait_for(node.hosting_nothing(), 30)
    text = out.decode()
    assert proc.returncode == 0, text
    assert f"(worker {node.worker_id})" in text
    assert ("this process hosts agents too, as worker worker-" in text) is host
    # The embedded run's progress lines: agents by name, their tools, their tasks.
    assert "ann shell echo task-ann-1 >> side.txt" in " ".join(text.split())
    assert "task 'task-cal' completed" in text
    assert "tasks: 3 completed" in text
    assert f"hosted by {node.worker_id}" in text
    assert sorted(side_lines(project)) == sorted(
        f"task-{w}-{i}" for w in WORKERS for i in range(1, STEPS + 1)
    )
    assert list(node.outcomes.values()) == [["done"]]


async def first_shell_call(client: ClusterClient, session_id: str, agent_name: str) -> None:
    async with contextlib.aclosing(client.follow(session_id)) as events:
        names: dict[str, str] = {}
        async for recorded in events:
            event = recorded.event
            if event.kind == "agent_spawned":
                names[event.agent_id] = event.name  # type: ignore[attr-defined]
            shell = isinstance(event, ToolCallStarted) and event.tool == "shell"
            if shell and names.get(str(event.agent_id)) == agent_name:
                return


async def test_serve_with_bus_shows_the_cluster_and_controls_an_agent_on_a_worker(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    async with (
        worker(bus_url, cluster, pg_url, latency_s=0.3) as node,
        served(bus_url, cluster, pg_url, project) as (http, view, client),
    ):
        session_id, worker_id = await client.start_session(
            str(project), "", title="served", approve_all=True
        )
        assert worker_id == node.worker_id
        await first_shell_call(client, session_id, "cal")
        await view.refresh()

        shown = (await http.get("/api/cluster")).json()
        assert shown["cluster"] == cluster
        assert [w["worker_id"] for w in shown["workers"]] == [node.worker_id]
        placed = {s["session_id"]: s for s in shown["sessions"]}
        assert placed[session_id]["status"] == "running"
        assert placed[session_id]["worker_id"] == node.worker_id
        assert placed[session_id]["title"] == "served"

        listed = {s["session_id"]: s for s in (await http.get("/api/sessions")).json()}
        assert listed[session_id]["open"] is True  # it can be driven from here
        server = (await http.get("/api/server")).json()
        assert session_id in server["open_sessions"]
        detail = (await http.get(f"/api/sessions/{session_id}")).json()
        assert detail["session"]["open"] is True
        assert {a["name"] for a in detail["agents"]} >= {"ann", "ben", "cal", "dan"}

        cancel = await http.post(f"/api/sessions/{session_id}/agents/cal/cancel", json={})
        assert cancel.status_code == 202, cancel.text
        cal = next(a for a in detail["agents"] if a["name"] == "cal")
        assert cancel.json()["agent_id"] == cal["agent_id"]
        said = await http.post(f"/api/sessions/{session_id}/messages", json={"text": "hi there"})
        assert said.status_code == 202, said.text
        nobody = await http.post(f"/api/sessions/{session_id}/agents/nobody/pause", json={})
        assert nobody.status_code == 404
        assert "nobody" in nobody.json()["detail"]

        await client.wait_done(session_id)
        await asyncio.wait_for(node.hosting_nothing(), 30)
        await view.refresh()
        feed = (await http.get(f"/api/sessions/{session_id}/feed?limit=5000")).json()
        kinds = {row["kind"] for row in feed["rows"]}
        assert {"control_requested", "control_applied", "user_message_posted"} <= kinds
        hi = [r for r in feed["rows"] if r["kind"] == "user_message_posted"]
        assert hi[0]["payload"]["message_id"] == said.json()["message_id"]
        resumed = await http.post(f"/api/sessions/{session_id}/resume", json={})
        assert resumed.status_code == 409  # the server only watches: sessions run on workers
        after = {s["session_id"]: s for s in (await http.get("/api/sessions")).json()}
        assert after[session_id]["open"] is False  # done: nobody hosts it any more
    assert not any(line.startswith(f"task-cal-{STEPS}") for line in side_lines(project))


async def test_a_session_opened_from_the_page_runs_on_a_worker_and_asks_the_page(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    async with (
        worker(bus_url, cluster, pg_url, prepare=one_worker) as node,
        served(bus_url, cluster, pg_url, project) as (http, view, client),
    ):
        created = await http.post("/api/sessions", json={"project": str(project)})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        assert created.json()["open"] is True
        assert node.hosted() == [session_id]

        async def answer_every_prompt() -> int:
            answered = 0
            while True:
                request_id = await view.wait_prompt(session_id)
                detail = (await http.get(f"/api/sessions/{session_id}")).json()
                prompt = next(p for p in detail["permissions"] if p["request_id"] == request_id)
                # The page shows what it shows for a session it hosts: arguments, preview.
                assert prompt["agent"] == "ann"
                assert prompt["arguments"]
                assert prompt["always"]
                if prompt["tool"] == "shell":
                    assert prompt["command"].startswith("echo task-ann-")
                if prompt["tool"] == "file_write":
                    assert "Plan:" in prompt["diff"]
                answer = await http.post(
                    f"/api/sessions/{session_id}/permissions/{request_id}",
                    json={"decision": "allow_always"},
                )
                assert answer.status_code == 204, answer.text
                answered += 1

        answering = asyncio.create_task(answer_every_prompt())
        try:
            await client.wait_done(session_id)
        finally:
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering
        again = await http.post(
            f"/api/sessions/{session_id}/permissions/perm_gone", json={"decision": "deny"}
        )
        assert again.status_code == 404
    assert side_lines(project) == [f"task-ann-{i}" for i in range(1, STEPS + 1)]


async def test_a_prompt_answered_elsewhere_leaves_the_page(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    async with (
        worker(bus_url, cluster, pg_url, prepare=one_worker) as node,
        served(bus_url, cluster, pg_url, project) as (http, view, client),
    ):
        # Like a terminal that answers at once (subscribed before the session starts, so it
        # gets every prompt, as the page does): the first answer wins.
        replies: list[asyncio.Task[None]] = []
        first: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def terminal(
            ask: dict[str, str], reply: Callable[[PermissionDecision], Awaitable[None]]
        ) -> None:
            if not first.done():
                first.set_result(ask["request_id"])
            replies.append(asyncio.ensure_future(reply("allow_once")))

        answering = await client.collect_permissions(terminal)
        session_id, _ = await client.start_session(str(project), "", approve_all=False)
        assert node.hosted() == [session_id]
        try:
            request_id = await first  # the page got it too (it listens to every session)
            async with contextlib.aclosing(client.follow(session_id)) as events:
                async for recorded in events:
                    resolved = recorded.event
                    ours = isinstance(resolved, PermissionResolved)
                    if ours and str(resolved.request_id) == request_id:  # type: ignore[attr-defined]
                        break
            await view.refresh()
            detail = (await http.get(f"/api/sessions/{session_id}")).json()
            assert request_id not in {p["request_id"] for p in detail["permissions"]}
            await client.wait_done(session_id)
        finally:
            await answering.unsubscribe()
            await asyncio.gather(*replies)


async def test_a_prompt_asked_before_the_terminal_listens_reaches_it_too(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    # A page (which answers nothing here) takes every prompt, so the worker's first prompt,
    # asked before `run --bus` hears the session's id, has a listener and is not asked again
    # for want of one: the terminal must get it when it starts answering.
    async with (
        worker(bus_url, cluster, pg_url, prepare=one_worker),
        await ClusterClient.connect(bus_url, pg_url, cluster=cluster, ttl_s=TTL) as client,
    ):
        on_page: asyncio.Queue[str] = asyncio.Queue()
        page = await client.collect_permissions(
            lambda ask, _reply: on_page.put_nowait(ask["request_id"])
        )
        session_id, _ = await client.start_session(str(project), "", approve_all=False)
        first = await on_page.get()  # asked already, and only the page heard it
        asked: list[str] = []

        async def terminal(ask: dict[str, str]) -> PermissionDecision:
            asked.append(ask["request_id"])
            return "allow_once"

        answering = await client.answer_permissions(session_id, terminal)
        try:
            await client.wait_done(session_id)
        finally:
            await answering.unsubscribe()
            await page.unsubscribe()
    assert asked[0] == first
    assert len(asked) == len(set(asked))  # none asked twice
    assert side_lines(project) == [f"task-ann-{i}" for i in range(1, STEPS + 1)]
