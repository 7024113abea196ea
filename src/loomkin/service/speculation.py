"""Speculation as the facade shows it: frozen records, and argument checking for commands.

The CLI and the web app read speculative tasks (their assumptions, verdicts and waste) as
:class:`SpeculationInfo` records built from the speculation service's projection, and pass
assumptions as plain mappings, checked here with clear errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.coordination.speculation import AssumptionSpec
from loomkin.core.events.base import JSON
from loomkin.errors import UserError
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.coordination.speculation import Speculation
    from loomkin.core.tasks import TaskBoard

__all__ = ["SpeculationInfo", "SpeculationSummary", "assumption_specs", "speculation_infos"]

_KEYS = frozenset({"on_task", "key", "value", "text"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationInfo:
    """One task's speculation: where it stands, what it assumed, how it was judged."""

    task_id: str
    title: str
    state: str
    """``running``, ``merged``, ``discarded`` (the outcome's ``reason`` says why: a failed
    assumption, a cancel, ...) or ``declined`` (the policy said no)."""
    agent: str
    blockers: tuple[str, ...]
    workspace: str
    blocker_titles: tuple[str, ...] = ()
    """The titles of ``blockers``, in the same order."""
    assumptions: tuple[dict[str, JSON], ...]
    verdicts: tuple[dict[str, JSON], ...]
    decision: dict[str, JSON] | None
    outcome: dict[str, JSON] | None
    """The merge or the discard (with the waste), once there is one."""
    judgements: tuple[dict[str, JSON], ...] = ()
    """The judge's model calls on prose assumptions (``SpeculationJudged``, no request)."""
    at_stake: dict[str, JSON] | None = None
    """While running, the work that a failed check would waste so far: ``s`` (from the start
    to now, or to the agent's tentative completion), ``tokens``, ``usd``, ``model_calls``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationSummary:
    """Counts and the learnt hit rates of a session's speculations."""

    started: int
    held: int
    failed: int
    merged: int
    discarded: int
    running: int
    wasted_s: float
    wasted_usd: float
    hit_rates: dict[str, float]
    """``kind/role`` → posterior mean probability that assumptions hold."""
    wasted_tokens: int = 0
    wasted_model_calls: int = 0
    waste_fraction: float = 0.0
    """Discarded work ÷ all work, in model tokens: the tokens of discarded speculative work
    over the tokens of every model call of the session (the judge's included); 0 before any
    model call."""
    saved_s: float = 0.0
    """Time merged speculations ran ahead of their blockers."""
    judge_calls: int = 0
    judge_tokens: int = 0
    judge_usd: float = 0.0


def assumption_specs(raw: Sequence[Mapping[str, JSON]]) -> list[AssumptionSpec]:
    """Check assumptions given as mappings (``key``+``value``, or ``text``; ``on_task``)."""
    specs = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise UserError(f"assumption {index} must be an object with key/value or text")
        unknown = set(item) - _KEYS
        if unknown:
            raise UserError(
                f"assumption {index} has unknown fields {sorted(unknown)}; "
                f"known: {', '.join(sorted(_KEYS))}"
            )
        key, text, on = item.get("key", ""), item.get("text", ""), item.get("on_task")
        if not isinstance(key, str) or not isinstance(text, str):
            raise UserError(f"assumption {index}: key and text must be strings")
        if on is not None and not isinstance(on, str):
            raise UserError(f"assumption {index}: on_task must be a task id")
        spec = AssumptionSpec(
            on_task=None if on is None else TaskId(on), key=key, value=item.get("value"), text=text
        )
        try:
            spec.check()
        except UserError as exc:
            raise UserError(f"assumption {index}: {exc}") from None
        specs.append(spec)
    return specs


def speculation_infos(service: Speculation, task_ids: set[str]) -> list[SpeculationInfo]:
    """Every speculation of the given tasks (the latest per task), oldest first."""
    board = service.ctx.tasks.board
    now = service.ctx.clock.now()
    infos = []
    for task_id, records in service.state.history.items():
        if task_id not in task_ids:
            continue
        starts = [i for i, r in enumerate(records) if r["kind"] == "speculation_started"]
        first = starts[-1] if starts else 0
        latest = records[first:]
        started = latest[0] if starts else None
        decisions = [r for r in records[: first + 1] if r["kind"] == "speculation_decided"]
        end = [r for r in latest if r["kind"] in ("speculation_merged", "speculation_discarded")]
        state = "running" if not end else str(end[-1]["kind"]).removeprefix("speculation_")
        if started is None:
            state = "declined"
        blockers = tuple(str(b) for b in _list(started, "blockers"))
        active = service.state.active.get(TaskId(task_id)) if state == "running" else None
        at_stake: dict[str, JSON] | None = None
        if active is not None:
            at_stake = {
                "s": max(0.0, (active.tentative_at or now) - active.started_at),
                "tokens": active.tokens,
                "usd": active.usd,
                "model_calls": active.calls,
            }
        infos.append(
            SpeculationInfo(
                task_id=task_id,
                title=_title(board, task_id),
                state=state,
                agent=str(started["agent_name"]) if started else "",
                blockers=blockers,
                blocker_titles=tuple(_title(board, b) for b in blockers),
                workspace=str(started["workspace"]) if started else "",
                assumptions=tuple(r for r in latest if r["kind"] == "assumption_added"),
                verdicts=tuple(r for r in latest if r["kind"] == "speculation_validated"),
                decision=decisions[-1] if decisions else None,
                outcome=end[-1] if end else None,
                judgements=tuple(r for r in latest if r["kind"] == "speculation_judged"),
                at_stake=at_stake,
            )
        )
    return infos


def _title(board: TaskBoard, task_id: str) -> str:
    view = board.get(TaskId(task_id))
    return view.title if view is not None else task_id


def _list(record: dict[str, JSON] | None, name: str) -> list[JSON]:
    value = None if record is None else record.get(name)
    return list(value) if isinstance(value, list | tuple) else []


def summary_of(service: Speculation) -> SpeculationSummary:
    """The session's speculation counts, waste and learnt hit rates."""
    st = service.state
    rates = {
        f"{kind}/{role}": st.rates.mean(kind, role) for (kind, role) in sorted(st.rates.outcomes)
    }
    return SpeculationSummary(
        started=st.counts["started"],
        held=st.counts["held"],
        failed=st.counts["failed"],
        merged=st.counts["merged"],
        discarded=st.counts["discarded"],
        running=len(st.active),
        wasted_s=st.wasted_s,
        wasted_usd=st.wasted_usd,
        hit_rates=rates,
        wasted_tokens=st.wasted_tokens,
        wasted_model_calls=st.wasted_calls,
        waste_fraction=st.wasted_tokens / st.model_tokens if st.model_tokens else 0.0,
        saved_s=st.saved_s,
        judge_calls=st.judge_calls,
        judge_tokens=st.judge_tokens,
        judge_usd=st.judge_usd,
    )
