"""Checking a speculation's assumptions against a blocker's real output.

Structured assumptions are compared exactly (:func:`loomkin.core.speculation.same_value`); a
key missing from the payload fails. Prose ones go to a :class:`Judge` (a model call in a
session); without one they fail, since a speculation is merged only on a clear yes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loomkin.core.events.base import JSON
from loomkin.core.speculation import Verdict, same_value
from loomkin.errors import UserError
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.events import AssumptionAdded

__all__ = ["AssumptionSpec", "Judge", "explain", "verdict_of"]


class Judge(Protocol):
    """Decides whether a prose assumption holds given the predecessor's real output."""

    async def judge(self, assumption: str, output: str) -> tuple[bool, str]:
        """``(holds, reasoning)``."""
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


async def verdict_of(a: AssumptionAdded, payload: dict[str, JSON], judge: Judge | None) -> Verdict:
    """Whether assumption ``a`` held against the real ``payload``."""
    if a.key:
        if a.key not in payload:
            return Verdict(assumption_id=a.assumption_id, holds=False, reasoning="no such key")
        actual = payload[a.key]
        return Verdict(
            assumption_id=a.assumption_id, holds=same_value(a.value, actual), actual=actual
        )
    if judge is None:
        return Verdict(
            assumption_id=a.assumption_id,
            holds=False,
            reasoning="no judge model is configured, so a prose assumption cannot be confirmed",
        )
    output = "\n".join(f"{k}: {v}" for k, v in payload.items() if v not in ("", (), None))
    holds, reasoning = await judge.judge(a.text, output)
    return Verdict(assumption_id=a.assumption_id, holds=holds, reasoning=reasoning)


def explain(assumptions: Sequence[AssumptionAdded], verdict: Verdict) -> str:
    """A readable line on a failed assumption (what was assumed, what came)."""
    assumption = next(a for a in assumptions if a.assumption_id == verdict.assumption_id)
    if assumption.key:
        return f"assumed {assumption.key} = {assumption.value!r}, actual {verdict.actual!r}"
    return f"assumed {assumption.text!r}: {verdict.reasoning}"
