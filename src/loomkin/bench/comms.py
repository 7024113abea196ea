"""Cross-team message delivery cost as unrelated teams are added (issue #5, epic 6.7).

How this works and why: the Elixir version sent every signal to every agent and each agent
filtered locally, so one message cost O(agents in the session). Loomkin delivers by
subscription: an agent's mailbox subscribes to its own topic and its team's topic, and a
message is published on exactly one topic. This benchmark checks that claim on the real
runtime. For each size it opens a session with two sibling teams (the sender's and the
recipient's) plus ``N`` unrelated teams of three agents each, then measures:

* ``deliver``: a committed ``MessageSent`` reaching the recipient's mailbox (the session's
  log listener, routing, bus publish, mailbox accept), timed in a tight synchronous loop;
* ``send``: the whole ``peer_message`` tool call (address resolution, policy check, append
  to the event log, delivery), awaited one message at a time.

Wall-clock timing (``perf_counter_ns``) is right here: this measures the machine, not a
scenario in virtual time.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.agents.tools import CATALOGUE
from loomkin.core.events import RecordedEvent
from loomkin.ids import CallId, EventId
from loomkin.service import Loomkin
from loomkin.testing.internals import live_agent, session_runtime
from loomkin.testing.models import FunctionModel, Reply
from loomkin.tools.base import ToolContext

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

__all__ = ["SIZES", "comms_table", "run_comms"]

SIZES = (1, 10, 100)
"""Numbers of unrelated teams present."""
AGENTS_PER_TEAM = 3
_DELIVERIES = 5000
_SENDS = 300


def _percentile_us(samples_ns: list[int], q: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def _ok(_request: ModelRequest) -> Reply:
    return Reply(text="ok")


def _factory(_role: Role, _name: str) -> Model:
    return FunctionModel(_ok, name="bench:ok")


async def _populate(session: Session, unrelated: int) -> tuple[Agent, Agent]:
    await session.create_team("left")
    await session.create_team("right")
    await session.spawn_agent("sender", "coder", team="left")
    await session.spawn_agent("recipient", "coder", team="right")
    for i in range(unrelated):
        await session.create_team(f"other-{i}")
        for j in range(AGENTS_PER_TEAM):
            await session.spawn_agent(f"agent-{j}", "coder", team=f"other-{i}")
    return live_agent(session, "left/sender"), live_agent(session, "right/recipient")


def _time_deliveries(session: Session, sender: Agent, recipient: Agent) -> list[int]:
    rt = session_runtime(session)
    event = rt.ctx.messages.message(
        "peer_message", "ping", to_agent=recipient.agent_id, sender=sender
    )
    projections = [projection for _, projection in rt.projections()]
    recorded = RecordedEvent(
        position=1,
        stream=f"session:{session.session_id}",
        stream_version=1,
        event_id=EventId("bench"),
        recorded_at=0.0,
        event=event,
    )
    samples: list[int] = []
    for i in range(_DELIVERIES):
        if i % 500 == 0:
            recipient.mailbox.drain()  # stay below the mailbox's capacity
        start = time.perf_counter_ns()
        for projection in projections:  # the session's whole fan-out of one live event
            projection.apply(recorded, live=True)
        samples.append(time.perf_counter_ns() - start)
    recipient.mailbox.drain()
    return samples


async def _time_sends(session: Session, sender: Agent) -> list[int]:
    tool = CATALOGUE.get("peer_message")
    ctx = ToolContext(
        project_root=sender.ctx.project_root,
        agent_id=sender.agent_id,
        agent_name=sender.name,
        team_id=sender.team_id,
        session_id=sender.session_id,
        call_id=CallId("bench"),
    )
    args = tool.parse_args(json.dumps({"to": "right/recipient", "content": "ping"}))
    samples: list[int] = []
    for _ in range(_SENDS):
        start = time.perf_counter_ns()
        await tool.run(args, ctx, sender.ctx)
        samples.append(time.perf_counter_ns() - start)
    return samples


async def _one_size(project: Path, unrelated: int) -> dict[str, float | int]:
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            project,
            model_factory=_factory,
            settings=SessionSettings(bootstrap_orienter=False),
        )
        sender, recipient = await _populate(session, unrelated)
        await session.wait_idle()
        deliver = _time_deliveries(session, sender, recipient)
        send = await _time_sends(session, sender)
        await session.wait_idle()
        return {
            "unrelated_teams": unrelated,
            "agents": len(session.agents()),
            "deliver_us_p50": _percentile_us(deliver, 0.5),
            "deliver_us_p95": _percentile_us(deliver, 0.95),
            "send_us_p50": _percentile_us(send, 0.5),
            "send_us_p95": _percentile_us(send, 0.95),
        }


async def _run(sizes: tuple[int, ...]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="loomkin-bench-comms-") as tmp:
        await _one_size(Path(tmp), 1)  # warm-up (imports, caches), not reported
        rows = [await _one_size(Path(tmp), n) for n in sizes]
    first, last = rows[0], rows[-1]
    return {
        "benchmark": "comms",
        "agents_per_team": AGENTS_PER_TEAM,
        "deliveries": _DELIVERIES,
        "sends": _SENDS,
        "rows": rows,
        "deliver_growth": round(float(last["deliver_us_p50"]) / float(first["deliver_us_p50"]), 2),
        "send_growth": round(float(last["send_us_p50"]) / float(first["send_us_p50"]), 2),
    }


def run_comms(sizes: tuple[int, ...] = SIZES) -> dict[str, object]:
    """Run the benchmark for each number of unrelated teams; return the figures as JSON values."""
    return asyncio.run(_run(sizes))


def comms_table(result: dict[str, object]) -> str:
    """A readable table of :func:`run_comms`'s figures."""
    lines = [
        "Cross-team message delivery vs unrelated teams present "
        f"({result['agents_per_team']} agents each)",
        f"{'teams':>6} {'agents':>7} {'deliver p50':>12} {'p95':>8} {'send p50':>10} {'p95':>8}",
    ]
    rows = result["rows"]
    assert isinstance(rows, list)
    for row in rows:
        lines.append(
            f"{row['unrelated_teams']:>6} {row['agents']:>7} {row['deliver_us_p50']:>10.2f}µs "
            f"{row['deliver_us_p95']:>6.2f}µs {row['send_us_p50']:>8.1f}µs "
            f"{row['send_us_p95']:>6.1f}µs"
        )
    lines.append(
        f"p50 growth from the smallest to the largest size: deliver ×{result['deliver_growth']}, "
        f"send ×{result['send_growth']}"
    )
    return "\n".join(lines)
