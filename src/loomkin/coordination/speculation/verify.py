"""Checking a speculation's assumptions against a blocker's real output.

Structured assumptions are compared exactly (:func:`loomkin.core.speculation.same_value`); a
key missing from the payload fails. Prose ones go to a :class:`Judge` (a model call in a
session); without one they fail, since a speculation is merged only on a clear yes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from loomkin.core.events.base import JSON
from loomkin.core.speculation import Verdict, same_value
from loomkin.errors import UserError
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.events import AssumptionAdded

__all__ = ["AssumptionSpec", "Judge", "Judgement", "explain", "verdict_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """A judge's answer on one prose assumption, with the model call that gave it.

    The call is journaled (``SpeculationJudged``) and counted as spend; a judge that made no
    model call leaves ``model`` empty and the figures at zero.
    """

    holds: bool
    reasoning: str
    model: str = ""
    request: dict[str, JSON] = field(default_factory=dict)
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0


class Judge(Protocol):
    """Decides whether a prose assumption holds given the predecessor's real output."""

    async def judge(self, assumption: str, output: str) -> Judgement:
        """The verdict, its reasoning and the model call behind it."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AssumptionSpec:
    """An assumption as a caller states it: ``key`` → ``value``, or prose ``text``."""

    on_task: TaskId | None = None
    key: str = ""
    value: JSON = None
    text: str = ""

    def check(self) -> None:
        """Refuse an assumption that is neither structured nor prose, or both."""
        if bool(self.key.strip()) == bool(self.text.strip()):
            raise UserError("an assumption has either a key (with its value) or a text, not both")


async def verdict_of(
    a: AssumptionAdded, payload: dict[str, JSON], judge: Judge | None
) -> tuple[Verdict, Judgement | None]:
    """Whether assumption ``a`` held against the real ``payload``, and the judge's answer.

    The answer is ``None`` for a structured assumption, or when no judge is configured.
    """
    if a.key:
        if a.key not in payload:
            missing = Verdict(assumption_id=a.assumption_id, holds=False, reasoning="no such key")
            return missing, None
        actual = payload[a.key]
        held = same_value(a.value, actual)
        return Verdict(assumption_id=a.assumption_id, holds=held, actual=actual), None
    if judge is None:
        return Verdict(
            assumption_id=a.assumption_id,
            holds=False,
            reasoning="no judge model is configured, so a prose assumption cannot be confirmed",
        ), None
    output = "\n".join(f"{k}: {v}" for k, v in payload.items() if v not in ("", (), None))
    judged = await judge.judge(a.text, output)
    verdict = Verdict(assumption_id=a.assumption_id, holds=judged.holds, reasoning=judged.reasoning)
    return verdict, judged


def explain(assumptions: Sequence[AssumptionAdded], verdict: Verdict) -> str:
    """A readable line on a failed assumption (what was assumed, what came)."""
    assumption = next(a for a in assumptions if a.assumption_id == verdict.assumption_id)
    if assumption.key:
        return f"assumed {assumption.key} = {assumption.value!r}, actual {verdict.actual!r}"
    return f"assumed {assumption.text!r}: {verdict.reasoning}"
