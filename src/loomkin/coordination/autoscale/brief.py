"""What the autoscaler writes: a new agent's onboarding brief, a retired agent's legacy.

A new agent reads, before it takes any work: why it was added, the Orienter's brief of the
project, what the team knows so far, and the work waiting for it. A retired agent leaves
behind what it learned (its finished tasks, their results and hand-offs) as a finding in the
team's knowledge, where ``knowledge_query`` and the relevance scorer find it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.events import InsightShared
    from loomkin.core.taskview import TaskView

__all__ = ["legacy_text", "onboarding_text"]

_CAP = 1200


def _cut(text: str, cap: int = _CAP) -> str:
    text = text.strip()
    return text if len(text) <= cap else text[: cap - 1] + "…"


def onboarding_text(
    *,
    name: str,
    team: str,
    why: str,
    orienter_brief: str,
    findings: Sequence[InsightShared],
    waiting: Sequence[TaskView],
) -> str:
    """The brief a spawned agent reads before it is given work."""
    parts = [f"Welcome, {name}. You were added to team {team!r} because {why}."]
    if orienter_brief:
        parts.append("The Orienter's brief of the project:\n" + _cut(orienter_brief))
    if findings:
        lines = [f"- {f.insight_type} from {f.author_name}: {_cut(f.text, 300)}" for f in findings]
        parts.append("What the team knows so far:\n" + "\n".join(lines))
    if waiting:
        lines = [f"- {v.title}" + (f" (for a {v.role})" if v.role else "") for v in waiting]
        parts.append(
            "Work waiting now (you will be assigned one of these, or claim one with "
            "task_claim):\n" + "\n".join(lines)
        )
    parts.append("Read this, then answer in one line that you are ready; no tool is needed.")
    return "\n\n".join(parts)


def legacy_text(name: str, role: str, finished: Sequence[TaskView]) -> str:
    """What a retired agent learned, for the team's knowledge ("" when it finished nothing)."""
    if not finished:
        return ""
    lines = [f"{name} ({role}) was retired as idle; what it did and learned:"]
    for view in finished:
        lines.append(f"- {view.title}: {_cut(view.result or '', 300)}")
        if view.handoff is not None:
            for item in view.handoff.lines():
                lines.append(f"  {item}")
    return "\n".join(lines)
