"""Feed rows of speculation events (SPEC §3.7): decisions, assumptions, verdicts, waste."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import (
    AssumptionAdded,
    SpeculationDecided,
    SpeculationDiscarded,
    SpeculationJudged,
    SpeculationMerged,
    SpeculationStarted,
    SpeculationValidated,
    SpeculativeMilestoneHeld,
)

if TYPE_CHECKING:
    from loomkin.core.events import Event
    from loomkin.service import Names

__all__ = ["SPECULATION_ROW_TYPES", "speculation_summary"]

SPECULATION_ROW_TYPES: dict[str, str] = {
    "speculation_decided": "speculation",
    "speculation_started": "speculation",
    "assumption_added": "speculation",
    "speculation_validated": "speculation",
    "speculation_judged": "speculation",
    "speculation_merged": "speculation",
    "speculation_discarded": "speculation",
    "speculative_milestone_held": "speculation",
}
"""Every speculation event is a ``speculation`` row (the web app shows them apart)."""


def _title(task_id: str, names: Names) -> str:
    task = names.task(task_id)
    return task.title if task is not None else task_id


def speculation_summary(event: Event, names: Names) -> str | None:
    """One line for a speculation event (``None`` for other kinds)."""
    match event:
        case SpeculationDecided():
            verb = "speculate" if event.speculate else "do not speculate"
            return (
                f"{verb} on {_title(event.task_id, names)!r}: p(hold) {event.p_hold:.2f}, "
                f"saves {event.expected_saving_s:.0f} s, risks ${event.expected_waste_usd:.4f}"
                f" ({event.reason})"
            )
        case SpeculationStarted():
            ahead = ", ".join(repr(_title(b, names)) for b in event.blockers)
            return (
                f"{event.agent_name} speculates on {_title(event.task_id, names)!r} ahead of "
                f"{ahead} ({event.workspace_kind} workspace)"
            )
        case AssumptionAdded():
            what = f"{event.key} = {event.value!r}" if event.key else repr(event.text[:120])
            return f"assumes {_title(event.on_task, names)!r} delivers {what}"
        case SpeculationValidated():
            verdict = "held" if event.held else "failed"
            return f"assumptions on {_title(event.on_task, names)!r} {verdict}"
        case SpeculationJudged():
            verdict = "holds" if event.holds else "fails"
            tokens = event.input_tokens + event.output_tokens
            return (
                f"judge ({event.model}) on {_title(event.task_id, names)!r}: the assumption "
                f"{verdict}: {event.reasoning[:160]} ({tokens} tokens, ${event.cost_usd:.4f})"
            )
        case SpeculationMerged():
            files = ", ".join(event.files) or "no files"
            return f"speculative work on {_title(event.task_id, names)!r} merged ({files})"
        case SpeculativeMilestoneHeld():
            return (
                f"milestone {event.name!r} of speculative {_title(event.task_id, names)!r} "
                "held until its assumptions are confirmed"
            )
        case SpeculationDiscarded():
            return (
                f"speculative work on {_title(event.task_id, names)!r} discarded "
                f"({event.reason}): wasted {event.wasted_s:.0f} s, {event.wasted_tokens} tokens, "
                f"{event.wasted_model_calls} model calls"
            )
        case _:
            return None
