"""Per-agent placement: a session's agents run their model calls on the workers they are leased to.

Against the real NATS server and Postgres; waits on the real lease TTL, not on sleeps.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from nats.errors import TimeoutError as NatsTimeout

from loomkin.agents.roles import resolve_role
from loomkin.bench.__main__ import main as bench_main
from loomkin.bench.faults_child import SETTINGS
from loomkin.bench.placed_calls import placed_call_figures
from loomkin.cluster import ClusterClient, ClusterNames, Worker
from loomkin.cluster.agents import AgentPlacer
from loomkin.cluster.bus import connect, open_buckets
from loomkin.cluster.calls import CallEnd, CallRequest, decode_message
from loomkin.cluster.names import agent_key
from loomkin.cluster.tools import PlacedTools
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import (
    AgentPlaced,
    AgentSpawned,
    ControlApplied,
    ModelCallCompleted,
    ModelCallFailed,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.errors import ProviderUnavailable, ToolError
from loomkin.ids import AgentId, CallId, SessionId, TeamId, new_id
from loomkin.llm.model import ModelRequest
from loomkin.testing.cluster import ExecutorRig, executor_rig, streamed_text
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.base import ToolContext
from loomkin.tools.builtin.shell import shell

from .coders import TTL, completed_calls, options, side_lines

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from loomkin.cluster.leases import BusLease
    from loomkin.cluster.placement import WorkerLoad
    from loomkin.llm.model import Model

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


async def placements(client: ClusterClient, session_id: str) -> list[AgentPlaced]:
    return [r.event for r in await client.history(session_id) if isinstance(r.event, AgentPlaced)]


async def test_a_sessions_agents_spread_over_the_workers_and_the_run_finishes(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    trio = [await workers(latency_s=0.02) for _ in range(3)]
    session_id, host_id = await client.start_session(str(project), "", approve_all=True)
    await client.wait_done(session_id)
    placed = await placements(client, session_id)
    assert placed, "no agent was placed on a worker"
    where = {p.agent_id: p.worker for p in placed}
    assert len(where) == len(placed)  # nothing moved: no worker failed
    # Three agents with work, three idle workers: the least-loaded rule spreads them, the
    # session's host counting one agent's share (its loops and log) once its report is out.
    per_worker = collections.Counter(where.values())
    assert len(per_worker) >= 2, per_worker
    weights = [per_worker[w.worker_id] + (w.worker_id == host_id) for w in trio]
    assert max(weights) - min(weights) <= 1, (per_worker, host_id)
    run = {w.worker_id: w.executor.calls_run for w in trio if w.executor is not None}
    assert all(run[w] > 0 for w in per_worker), run
    # Every shell call ran on its agent's worker, the other tools on the session's host.
    shells = [
        r.event
        for r in await client.history(session_id)
        if isinstance(r.event, ToolCallCompleted) and r.event.tool == "shell"
    ]
    ran = {w.worker_id: w.executor.tools_run for w in trio if w.executor is not None}
    assert sum(ran.values()) == len(shells) > 0
    for worker_id in per_worker:
        agents_there = {a for a, w in where.items() if w == worker_id}
        assert ran[worker_id] == sum(1 for e in shells if e.agent_id in agents_there)
    # Every completed model call was streamed by the worker of its agent.
    calls = [r.event for r in await client.history(session_id)]
    completed = sum(isinstance(e, ModelCallCompleted) for e in calls)
    assert sum(run.values()) >= completed
    assert set((await completed_calls(client, session_id)).values()) == {1}
    assert sorted(side_lines(project)) == sorted(set(side_lines(project)))
    # The session is done: its host gave the agents' leases back.
    for agent_id in where:
        assert await client.holder(agent_key(session_id, agent_id)) is None
    assert host_id in {w.worker_id for w in trio}


async def test_a_graceful_shutdown_moves_its_agents_to_the_others_at_once(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    pair = [await workers(latency_s=0.05) for _ in range(2)]
    session_id, host_id = await client.start_session(str(project), "", approve_all=True)
    # Equal loads: the worker that hosts no session gets the first agent, and one in two.
    host, helper = pair if pair[0].worker_id == host_id else pair[::-1]
    # Wait until an agent runs on the helper, then shut the helper down mid-run.
    while not any(p.worker == helper.worker_id for p in await placements(client, session_id)):  # noqa: ASYNC110 - polls the store
        await asyncio.sleep(0.02)
    await helper.close()
    await client.wait_done(session_id)
    placed = await placements(client, session_id)
    on_helper = {p.agent_id for p in placed if p.worker == helper.worker_id}
    moved = {p.agent_id for p in placed if p.reason == f"moved from {helper.worker_id}"}
    assert on_helper
    assert moved == on_helper, placed
    assert all(p.worker == host.worker_id for p in placed if p.reason.startswith("moved"))
    assert set((await completed_calls(client, session_id)).values()) == {1}
    assert len(side_lines(project)) == len(set(side_lines(project)))
    done = [r for r in await client.history(session_id) if isinstance(r.event, ToolCallCompleted)]
    assert done


def slow_shell(request: ModelRequest) -> Reply:
    """Run one long command; then say what came of it."""
    results = [m for m in request.messages if isinstance(m, ToolResultMessage)]
    if not results:
        return Reply(tool_calls=[Call("shell", {"command": "sleep 60", "timeout_s": 90})])
    return Reply(text=f"shell said: {results[-1].content}")


async def test_a_shell_call_on_a_worker_whose_lease_expired_is_reported_interrupted(
    bus_url: str, cluster: str, pg_url: str, client: ClusterClient, project: Path
) -> None:
    def factory(_role: object, name: str) -> Model:
        return FunctionModel(slow_shell, name=f"scripted:{name}")

    started: list[Worker] = []
    try:
        for _ in range(2):
            node = Worker(
                bus_url,
                replace(options(pg_url), model_factory=factory, prepare=None),
                cluster=cluster,
                scan_s=0.2,
            )
            await node.start()
            started.append(node)
        session_id, _ = await client.start_session(str(project), "go", approve_all=True)
        while not any(  # noqa: ASYNC110 - polls the store
            isinstance(r.event, ToolCallStarted) and r.event.tool == "shell"
            for r in await client.history(session_id)
        ):
            await asyncio.sleep(0.02)
        placed = await placements(client, session_id)
        assert len(placed) == 1  # the only agent (either worker may have it)
        first = placed[0].worker
        other = next(n.worker_id for n in started if n.worker_id != first)
        # Its worker's key of the agent goes, as when that worker dies and the TTL passes.
        nc = await connect(bus_url)
        try:
            buckets = await open_buckets(nc.jetstream(), ClusterNames(cluster), ttl_s=TTL)
            await buckets.leases.delete(agent_key(session_id, placed[0].agent_id))
        finally:
            await nc.close()
        await client.wait_done(session_id)
        log = [r.event for r in await client.history(session_id)]
    finally:
        for node in started:
            await node.close()
    shell = [e for e in log if isinstance(e, ToolCallCompleted) and e.tool == "shell"]
    assert len(shell) == 1  # reported once, never run again behind the model's back
    assert shell[0].outcome == "error"
    assert shell[0].result.startswith(f"Error: interrupted: worker {first}")
    assert "may or may not have taken effect" in shell[0].result
    moved = [e for e in log if isinstance(e, AgentPlaced) and e.reason == f"moved from {first}"]
    assert [e.worker for e in moved] == [other]  # its next model call ran elsewhere


async def test_the_bench_measures_local_and_placed_calls_side_by_side(
    bus_url: str, cluster: str
) -> None:
    figures = await placed_call_figures(bus_url, cluster, calls=20)
    assert figures["local_call_ms"] > 0
    assert figures["placed_call_ms"] > 0
    assert figures["placement_overhead_ms"] == pytest.approx(
        figures["placed_call_ms"] - figures["local_call_ms"]
    )


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["failover", "--trials", "0"], "--agent-kills >= 1"),
        (["failover", "--agent-kills", "-1"], "--agent-kills >= 0"),
        (["failover", "--workers", "1", "--agent-kills", "3"], "--workers >= 2"),
    ],
)
def test_the_failover_bench_refuses_bad_counts(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_main(argv) == 2
    assert named in capsys.readouterr().err


async def vanish(worker: Worker) -> None:
    """Make ``worker`` disappear as a killed process does: no answers, no renewals, no goodbye.

    Its NATS connection closes (every request to it finds no responder) and its lease keeper
    stops without giving anything back, so its keys expire after the TTL.
    """
    keeper = worker._keeper  # a kill, simulated in-process
    assert keeper is not None
    await worker.nc.close()
    await keeper.close()


async def test_a_vanished_workers_agents_move_once_its_keys_expire(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    pair = [await workers(latency_s=0.05) for _ in range(2)]
    session_id, host_id = await client.start_session(str(project), "", approve_all=True)
    host, victim = pair if pair[0].worker_id == host_id else pair[::-1]
    while not any(  # noqa: ASYNC110 - polls the store
        p.worker == victim.worker_id for p in await placements(client, session_id)
    ):
        await asyncio.sleep(0.02)
    await vanish(victim)
    await client.wait_done(session_id)
    placed = await placements(client, session_id)
    on_victim = {p.agent_id for p in placed if p.worker == victim.worker_id}
    moved = [p for p in placed if p.reason == f"moved from {victim.worker_id}"]
    assert {p.agent_id for p in moved} == on_victim
    assert {p.worker for p in moved} == {host.worker_id}
    log = [r.event for r in await client.history(session_id)]
    failed = [e for e in log if isinstance(e, ModelCallFailed)]
    assert all(e.will_retry for e in failed), failed  # no call gave up on its agent
    assert set((await completed_calls(client, session_id)).values()) == {1}
    assert len(side_lines(project)) == len(set(side_lines(project)))


async def test_an_asap_pause_cuts_a_stream_running_on_another_worker(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient, project: Path
) -> None:
    pair = [await workers(latency_s=60.0) for _ in range(2)]  # calls that wait on the model
    session_id, host_id = await client.start_session(str(project), "", approve_all=True)
    host, other = pair if pair[0].worker_id == host_id else pair[::-1]
    assert other.executor is not None
    busy: list[str] = []
    while not busy:  # until a call of an agent placed there streams there
        await asyncio.sleep(0.02)
        placed = await placements(client, session_id)
        there = [p.agent_id for p in placed if p.worker == other.worker_id]
        busy = [a for a in there if other.executor.in_flight(session_id, a)]
    log = [r.event for r in await client.history(session_id)]
    names = {e.agent_id: e.name for e in log if isinstance(e, AgentSpawned)}
    name = names[busy[0]]
    await client.control(session_id, "pause", name)
    applied: ControlApplied | None = None
    while applied is None:
        await asyncio.sleep(0.02)
        log = [r.event for r in await client.history(session_id)]
        applied = next((e for e in log if isinstance(e, ControlApplied)), None)
    assert applied.agent_id == busy[0]
    assert applied.action == "pause"
    assert applied.checkpoint == "stream"  # within the call, not after a 60 s answer
    # The host told the worker: its call stops there, the agent stays placed on it.
    while other.executor.in_flight(session_id, busy[0]):  # noqa: ASYNC110 - the cancel's way
        await asyncio.sleep(0.02)
    assert (session_id, busy[0]) in other.executor.held()
    assert host.worker_id != other.worker_id


# -- one executor and one placer, without a session (the wire and the worker's side) ---------


Rig = ExecutorRig


async def _echo(request: ModelRequest) -> Reply:
    """Answer with the length of the last user message (the worker read it whole).

    ``wait``: answer never (the host gives the call up).
    """
    text = next(m.text for m in reversed(request.messages) if isinstance(m, UserMessage))
    if text == "wait":
        await asyncio.Event().wait()
    return Reply(text=f"read {len(text)} characters")


def ann_shell_call(project: Path) -> ToolContext:
    """A shell call of the rig's agent ann, whose command can wait on the FIFO ``gate``."""
    os.mkfifo(project / "gate")
    return ToolContext(
        project_root=project,
        agent_id=AgentId("agent_ann"),
        agent_name="ann",
        team_id=TeamId("team_rig"),
        session_id=SessionId("session_rig"),
        call_id=CallId(new_id("call_")),
    )


@pytest.fixture
async def rig(bus_url: str, cluster: str) -> AsyncIterator[Rig]:
    def factory(_role: object, name: str) -> Model:
        return FunctionModel(_echo, name=f"scripted:{name}")

    async with executor_rig(
        bus_url, cluster, ttl_s=TTL, model_factory=factory, settings=SETTINGS
    ) as rig:
        yield rig


answer = streamed_text


async def test_a_call_whose_request_outgrows_one_nats_message_still_runs_on_the_worker(
    rig: Rig,
) -> None:
    # A long-running agent's transcript: more than the server takes in one message (1 MB).
    big = "x" * (rig.nc.max_payload + 200_000)
    request = ModelRequest(messages=(UserMessage(text=big),), cache_key="agent_ann")
    assert await answer(ann(rig), request) == f"read {len(big)} characters"
    assert rig.executor.calls_run == 1


def ann(rig: Rig) -> Model:
    return rig.placer.wrap(lambda _r, name: FunctionModel(_echo, name=f"scripted:{name}"))(
        resolve_role("coder"), "ann"
    )


async def test_a_cancel_that_comes_with_the_reply_of_a_lease_check_still_stops_the_call(
    rig: Rig,
) -> None:
    await rig.placer.route("agent_ann")
    real = rig.placer._leases.holder
    checking = asyncio.Event()
    pending: list[tuple[asyncio.Future[dict[str, object] | None], dict[str, object] | None]] = []

    async def holder(key: str) -> dict[str, object] | None:  # waits as nats-py's requests do
        record = await real(key)
        reply: asyncio.Future[dict[str, object] | None] = asyncio.get_running_loop().create_future()
        pending.append((reply, record))
        checking.set()
        return await asyncio.wait_for(reply, 60)

    rig.placer._leases.holder = holder  # type: ignore[method-assign]
    request = ModelRequest(messages=(UserMessage(text="wait"),), cache_key="agent_ann")
    call = asyncio.create_task(answer(ann(rig), request))
    try:
        await checking.wait()  # the call is silent: the host checks the agent's lease
        reply, record = pending[0]
        reply.set_result(record)  # the reply and the cancellation in the same turn
        call.cancel()
        done, _ = await asyncio.wait({call}, timeout=10)
        assert done == {call}, "the cancellation was lost: the call waits on"
        assert call.cancelled()
    finally:
        call.cancel()
        for reply, record in pending:
            if not reply.done():
                reply.set_result(record)


class ShellDeps:
    shell_policy = SETTINGS.shell_policy


async def test_a_moment_the_leases_bucket_cannot_be_read_does_not_cut_a_running_shell(
    rig: Rig, project: Path
) -> None:
    await rig.placer.route("agent_ann")
    real = rig.placer._leases.holder
    failed = asyncio.Event()

    async def holder(key: str) -> dict[str, object] | None:
        if not failed.is_set():  # one check of many meets a JetStream hiccup
            failed.set()
            raise NatsTimeout
        return await real(key)

    rig.placer._leases.holder = holder  # type: ignore[method-assign]
    gate = project / "gate"
    context = ann_shell_call(project)
    args = shell.parse_args(json.dumps({"command": "read line < gate; echo got $line"}))
    tools = PlacedTools(rig.placer)
    run = asyncio.create_task(tools.run(shell, args, context, ShellDeps()))  # type: ignore[arg-type]
    try:
        await failed.wait()  # while the command waits at its gate
        await asyncio.to_thread(gate.write_text, "go\n")
        assert await run == "got go\n[exit code 0]"
    finally:
        run.cancel()
    assert rig.executor.tools_run == 1


async def test_a_worker_that_fails_to_take_an_agent_says_so_instead_of_going_silent(
    rig: Rig,
) -> None:
    leases = rig.executor._leases
    real = leases.acquire
    failed = asyncio.Event()

    async def acquire(key: str) -> BusLease | None:
        if not failed.is_set():  # JetStream busy for a moment
            failed.set()
            raise NatsTimeout
        return await real(key)

    leases.acquire = acquire  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    started = loop.time()
    route = await rig.placer.route("agent_ann")
    # Asked again at once: not taken for a dead worker after the 5 s a silent take costs.
    assert loop.time() - started < 2.0
    assert route.worker_id == "rig-worker"
    assert failed.is_set()


async def test_an_agent_its_worker_gave_back_is_placed_again_without_shunning_that_worker(
    rig: Rig,
) -> None:
    request = ModelRequest(messages=(UserMessage(text="hi"),), cache_key="agent_ann")
    model = ann(rig)
    await answer(model, request)
    first = rig.placer.routes()["agent_ann"]
    # Idle for idle_s, the agent was given back (the host's route to it is stale now).
    await rig.executor._give_back(agent_key("session_rig", "agent_ann"))
    assert await answer(model, request) == "read 2 characters"
    again = rig.placer.routes()["agent_ann"]
    assert again.worker_id == first.worker_id == "rig-worker"
    assert again.epoch > first.epoch
    # The worker answered (it is alive): the agent was placed again, it did not move.
    assert [reason for *_, reason in rig.placed] == ["placed", "placed"]
    assert "rig-worker" not in rig.placer._shunned


async def test_a_cancel_that_overtakes_its_call_keeps_the_worker_from_running_it(
    rig: Rig,
) -> None:
    route = await rig.placer.route("agent_ann")
    names = rig.placer.names
    abandoned = CallRequest(
        call=new_id("call_"),
        session_id="session_rig",
        agent_id="agent_ann",
        epoch=route.epoch,
        agent="ann",
        role="coder",
        model="scripted:ann",
        project="/",
        request=ModelRequest(messages=(UserMessage(text="wait"),), cache_key="agent_ann"),
    )
    # The worker handles calls and cancels on two subscriptions, each in its own task: a
    # cancel sent right after its call can be handled first (a backlog of calls, say).
    await rig.nc.publish(
        names.worker_cancels(route.worker_id), json.dumps({"call": abandoned.call}).encode()
    )
    await rig.nc.flush()
    inbox = rig.nc.new_inbox()
    sub = await rig.nc.subscribe(inbox)
    try:
        await rig.nc.publish(names.worker_calls(route.worker_id), abandoned.to_bytes(), reply=inbox)
        # A call sent after it is handled after it (one subscription, in order).
        request = ModelRequest(messages=(UserMessage(text="hi"),), cache_key="agent_ann")
        assert await answer(ann(rig), request) == "read 2 characters"
        assert rig.executor.in_flight("session_rig", "agent_ann") == 0, "the abandoned call runs"
    finally:
        await sub.unsubscribe()


async def test_a_request_the_worker_cannot_read_fails_at_once_under_its_call_id(
    rig: Rig,
) -> None:
    route = await rig.placer.route("agent_ann")
    inbox = rig.nc.new_inbox()
    sub = await rig.nc.subscribe(inbox)
    try:
        malformed = {"call": "call_unreadable", "session_id": "session_rig", "request": {}}
        subject = rig.placer.names.worker_calls(route.worker_id)
        await rig.nc.publish(subject, json.dumps(malformed).encode(), reply=inbox)
        call, what = decode_message((await sub.next_msg(timeout=10)).data)
    finally:
        await sub.unsubscribe()
    # Under "?" the host would drop it as a message of another call, and wait on.
    assert call == "call_unreadable"
    assert isinstance(what, CallEnd)
    assert what.error is not None
    assert "'messages' and 'tools' must be lists" in str(what.error)


async def test_a_new_host_taking_an_agent_stops_the_shell_its_dead_host_left_running(
    rig: Rig, project: Path
) -> None:
    old = rig.placer
    await old.route("agent_ann")
    context = ann_shell_call(project)
    args = shell.parse_args(json.dumps({"command": "read line < gate; echo ran >> side"}))
    orphan = asyncio.create_task(PlacedTools(old).run(shell, args, context, ShellDeps()))  # type: ignore[arg-type]
    try:
        while not rig.executor.in_flight("session_rig", "agent_ann"):  # noqa: ASYNC110 - the call's way
            await asyncio.sleep(0.01)
        # The old host died here (its task waits on, unheard). The session resumes on a new
        # host, which reports the command interrupted and places the agent where it runs.
        new = AgentPlacer(
            nc=rig.nc,
            names=old.names,
            leases=old._leases,
            directory=old._directory,
            session_id="session_rig",
            project="/",
            ttl_s=TTL,
            on_placed=old._on_placed,
        )
        route = await new.route("agent_ann")
        assert route == old.routes()["agent_ann"]  # the same worker, the same epoch
        # The command the model was told is interrupted must not run on beside its retry.
        for _ in range(200):
            if not rig.executor.in_flight("session_rig", "agent_ann"):
                break
            await asyncio.sleep(0.01)
        assert rig.executor.in_flight("session_rig", "agent_ann") == 0
    finally:
        orphan.cancel()
        await asyncio.wait({orphan})
    assert not (project / "side").exists()


async def test_a_worker_whose_lease_renewals_stalled_is_shunned_and_does_not_vouch_for_its_agent(
    rig: Rig,
) -> None:
    request = ModelRequest(messages=(UserMessage(text="hi"),), cache_key="agent_ann")
    model = ann(rig)
    await answer(model, request)
    held = rig.executor._held[agent_key("session_rig", "agent_ann")]
    await held.kept.stop()  # its renewals stop getting through (cut off from NATS, say)
    held.kept.last_ok -= 3600
    with pytest.raises(ProviderUnavailable):  # no other worker to move to
        await answer(model, request)
    assert "rig-worker" in rig.placer._shunned
    # Refused once; asked to take the agent again, it did not answer with its old epoch.
    assert rig.executor.calls_refused == 1


async def test_a_shell_call_the_host_stops_waiting_for_is_stopped_on_its_worker(
    rig: Rig, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rig.placer.route("agent_ann")
    context = ann_shell_call(project)

    class Impatient:  # the host waits its own limit; the worker runs under its own policy
        shell_policy = replace(SETTINGS.shell_policy, max_timeout_s=0.5)

    monkeypatch.setattr("loomkin.cluster.tools._ANSWER_MARGIN_S", 0.0)
    args = shell.parse_args(json.dumps({"command": "read line < gate; echo ran >> side"}))
    with pytest.raises(ToolError, match="may or may not have run"):
        await PlacedTools(rig.placer).run(shell, args, context, Impatient())  # type: ignore[arg-type]
    # The model is told it may not have run, and may run it again: it must not run on.
    for _ in range(200):
        if not rig.executor.in_flight("session_rig", "agent_ann"):
            break
        await asyncio.sleep(0.01)
    assert rig.executor.in_flight("session_rig", "agent_ann") == 0
    assert not (project / "side").exists()


async def test_a_worker_that_shuts_down_takes_no_new_agent(rig: Rig) -> None:
    rig.executor._accepting = lambda: False  # closing: it waits for its sessions to stop
    with pytest.raises(ProviderUnavailable):  # no other worker here
        await rig.placer.route("agent_ann")
    assert rig.executor.agents() == 0
    assert await rig.placer._leases.holder(agent_key("session_rig", "agent_ann")) is None
    assert "rig-worker" in rig.placer._shunned


async def test_a_closing_worker_tells_the_directory_at_once_that_it_takes_no_more_work(
    workers: Callable[..., asyncio.Future[Worker]], client: ClusterClient
) -> None:
    leaving = await workers()
    keeper = leaving._keeper
    assert keeper is not None
    seen: list[bool] = []
    real = keeper.report

    async def report(load: WorkerLoad) -> None:
        await real(load)
        if not leaving._accepting:
            live = await client.workers()
            seen.extend(w.accepting for w in live if w.worker_id == leaving.worker_id)

    keeper.report = report  # type: ignore[method-assign]
    await leaving.close()
    assert seen == [False]
