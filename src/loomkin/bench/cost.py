"""``python -m loomkin.bench cost``: what a team costs against one agent, with prompt caching.

How this works and why:

* The same scripted coding scenario (:mod:`loomkin.bench.cost_scenario`) runs twice on a
  copy of the sample project: one agent alone, and a team with the coordination features
  on (the Orienter's brief, tasks with dependencies, the scheduler, hand-offs).
* Tokens are counted from the exact requests the runtime built, read back from the
  journal (``ModelCallStarted.request``), with the fixed chars-per-token rule
  (:mod:`loomkin.llm.caching`). Billed-equivalent tokens apply Anthropic's cache prices to
  consecutive requests of the same agent: the prefix a request shares byte for byte with
  the agent's previous one is a cache read (0.1 ×), the rest a cache write (1.25 ×); a
  compaction's summarising call is billed in full (1.25 ×).
* ``context_overflows`` counts requests larger than the model's window (the estimate the
  loop itself uses); ``max_tool_schema_tokens`` the largest tool-schema part of any request.
* The demo (``loomkin demo``) runs once in a child process; its journal gives
  ``demo_billed_tokens`` against the 128,434 input tokens it used before this work.
* Makespans are simulated model seconds (see :mod:`~loomkin.bench.cost_scenario`), measured
  in real time at ``scale`` real seconds per model second.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.agents.settings import ContextSettings
from loomkin.bench.cost_scenario import GOAL, solo_model, team_model
from loomkin.core.chat import message_from_json
from loomkin.core.events import ContextCompacted, ModelCallStarted, TranscriptAppended
from loomkin.llm.caching import (
    CHARS_PER_TOKEN,
    estimate_tokens,
    journal_prefix_text,
    shared_prefix_tokens,
    tool_schema_tokens,
)
from loomkin.llm.model import ModelRequest, ToolSchema
from loomkin.service import Loomkin
from loomkin.testing.models import ScriptedModel

if TYPE_CHECKING:
    from loomkin.core.events import JSON, RecordedEvent
    from loomkin.service import PendingPermission

__all__ = ["DEMO_BASELINE_TOKENS", "Tally", "cost_table", "run_cost", "tally"]

DEMO_BASELINE_TOKENS = 128_434
"""Input tokens of the demo before prompt caching, lean tools and compaction (main 2eb204a)."""
CACHE_READ = 0.1
CACHE_WRITE = 1.25
_SAMPLE = Path(__file__).resolve().parents[1] / "demo" / "sample_project"


@dataclass(slots=True)
class Tally:
    """Token figures of one run, from its journaled requests."""

    calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    billed_tokens: float = 0.0
    max_tool_schema_tokens: int = 0
    overflows: int = 0
    compactions: int = 0
    notice_tokens: int = 0
    """Tokens of the notices and briefs the runtime wrote into transcripts."""
    repeated_notice_tokens: int = 0
    """Of those, notices an agent had already been sent word for word."""
    _last: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def add_request(self, agent_id: str, request: dict[str, JSON], window: int) -> None:
        """Count one model request of ``agent_id`` (as journaled)."""
        text = journal_prefix_text(request)
        total = -(-len(text) // CHARS_PER_TOKEN)
        cached = min(total, shared_prefix_tokens(self._last.get(agent_id), text))
        self._last[agent_id] = text
        self.calls += 1
        self.input_tokens += total
        self.cached_tokens += cached
        self.billed_tokens += CACHE_READ * cached + CACHE_WRITE * (total - cached)
        built = _request(request)
        self.max_tool_schema_tokens = max(
            self.max_tool_schema_tokens, tool_schema_tokens(built.tools)
        )
        self.overflows += estimate_tokens(built) > window

    def add_notice(self, agent_id: str, message: dict[str, JSON]) -> None:
        """Count a transcript message the runtime wrote (a brief, a notice, a peer's words)."""
        text = message.get("text")
        if message.get("kind") != "user" or message.get("source") == "user":
            return
        if not isinstance(text, str):
            return
        tokens = -(-len(text) // CHARS_PER_TOKEN)
        self.notice_tokens += tokens
        if (agent_id, text) in self._seen:
            self.repeated_notice_tokens += tokens
        self._seen.add((agent_id, text))

    def to_json(self) -> dict[str, JSON]:
        """The figures as a JSON object."""
        return {
            "model_calls": self.calls,
            "input_tokens": self.input_tokens,
            "cached_tokens": self.cached_tokens,
            "billed_tokens": round(self.billed_tokens),
            "cache_hit_fraction": round(self.cached_tokens / max(1, self.input_tokens), 3),
            "max_tool_schema_tokens": self.max_tool_schema_tokens,
            "mean_input_tokens_per_call": round(self.input_tokens / max(1, self.calls)),
            "context_overflows": self.overflows,
            "compactions": self.compactions,
            "notice_tokens": self.notice_tokens,
            "repeated_notice_tokens": self.repeated_notice_tokens,
        }


def _request(request: dict[str, JSON]) -> ModelRequest:
    messages = request.get("messages") or []
    tools = request.get("tools") or []
    assert isinstance(messages, list | tuple)
    assert isinstance(tools, list | tuple)
    return ModelRequest(
        messages=tuple(message_from_json(m) for m in messages if isinstance(m, dict)),
        tools=tuple(
            ToolSchema(
                name=str(t["name"]),
                description=str(t["description"]),
                parameters=t["parameters"] if isinstance(t["parameters"], dict) else {},
            )
            for t in tools
            if isinstance(t, dict)
        ),
    )


def tally(history: list[RecordedEvent], window: int) -> Tally:
    """The token figures of every model request in ``history``."""
    result = Tally()
    for recorded in history:
        event = recorded.event
        if isinstance(event, ModelCallStarted):
            result.add_request(event.agent_id, dict(event.request), window)
        elif isinstance(event, TranscriptAppended):
            result.add_notice(event.agent_id, dict(event.message))
        elif isinstance(event, ContextCompacted):
            result.compactions += 1
            result.input_tokens += event.input_tokens
            result.billed_tokens += CACHE_WRITE * event.input_tokens
    return result


async def _run(team: bool, scale: float, window: int) -> tuple[Tally, float]:
    with tempfile.TemporaryDirectory(prefix="loomkin-cost-") as tmp:
        import shutil

        project = Path(tmp) / "project"
        shutil.copytree(_SAMPLE, project)
        settings = SessionSettings(
            bootstrap_orienter=team,
            max_iterations=60,
            context=ContextSettings(window_tokens=window),
        )
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(
                project,
                model_factory=(
                    (lambda role, name: team_model(role, name, scale))
                    if team
                    else (
                        lambda role, name: (
                            solo_model(scale)
                            if name == "solo"
                            else ScriptedModel([], name="scripted:idle")
                        )
                    )
                ),
                settings=settings,
            )

            async def allow(_prompt: PendingPermission) -> str:
                return "allow_once"

            session.set_permission_responder(allow)  # type: ignore[arg-type]
            started = time.perf_counter()
            if team:
                await session.send(GOAL)
            else:
                await session.spawn_agent("solo", "coder")
                await session.send(GOAL, to="solo")
            await session.wait_idle()
            makespan = (time.perf_counter() - started) / scale
            result = tally(await session.history(), window)
    return result, makespan


def _demo(window: int) -> Tally:
    """Run ``loomkin demo`` in a child process and count the requests in its journal."""
    with tempfile.TemporaryDirectory(prefix="loomkin-cost-demo-") as tmp:
        project = Path(tmp) / "demo"
        subprocess.run(
            [sys.executable, "-m", "loomkin.cli", "demo", "--project", str(project), "--pace", "0"],
            check=True,
            capture_output=True,
            timeout=600,
        )

        async def read() -> Tally:
            store = f"sqlite:///{project / '.loomkin' / 'loomkin.db'}"
            async with await Loomkin.open(store) as lk:
                events: list[RecordedEvent] = []
                for info in lk.sessions():
                    events.extend(await lk.history(info.session_id))
                return tally(events, window)

        return asyncio.run(read())


def run_cost(*, scale: float = 0.02, window: int = 128_000, demo: bool = True) -> dict[str, JSON]:
    """Run the scenario alone and as a team (and the demo); return the figures."""
    single, single_s = asyncio.run(_run(False, scale, window))
    team, team_s = asyncio.run(_run(True, scale, window))
    report: dict[str, JSON] = {
        "single_agent_billed_tokens": round(single.billed_tokens),
        "team_billed_tokens": round(team.billed_tokens),
        "team_vs_single": round(team.billed_tokens / max(1.0, single.billed_tokens), 3),
        "cache_hit_fraction": round(
            (single.cached_tokens + team.cached_tokens)
            / max(1, single.input_tokens + team.input_tokens),
            3,
        ),
        "max_tool_schema_tokens": max(single.max_tool_schema_tokens, team.max_tool_schema_tokens),
        "mean_input_tokens_per_call": round(
            (single.input_tokens + team.input_tokens) / max(1, single.calls + team.calls)
        ),
        "context_overflows": single.overflows + team.overflows,
        "makespan_single_s": round(single_s, 1),
        "makespan_team_s": round(team_s, 1),
        "single": single.to_json(),
        "team": team.to_json(),
        "window_tokens": window,
    }
    if demo:
        figures = _demo(window)
        report["demo"] = figures.to_json()
        report["demo_billed_tokens"] = round(figures.billed_tokens)
        report["demo_billed_vs_baseline"] = round(figures.billed_tokens / DEMO_BASELINE_TOKENS, 3)
    return report


def cost_table(report: dict[str, JSON]) -> str:
    """A readable table of the figures."""
    lines = [f"{key:<28} {value}" for key, value in report.items() if not isinstance(value, dict)]
    for run in ("single", "team", "demo"):
        figures = report.get(run)
        if isinstance(figures, dict):
            lines.append(f"-- {run}")
            lines.extend(f"   {key:<25} {value}" for key, value in figures.items())
    return "\n".join(lines)
