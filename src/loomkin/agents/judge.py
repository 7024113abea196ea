"""The model that judges prose assumptions of a speculation (SPEC §3.7).

A prose assumption ("the parser keeps returning a list") cannot be compared exactly, so a
model reads it next to the blocker's real output and answers ``HOLDS`` or ``FAILS`` on its
first line, with its reasoning after. Anything else counts as ``FAILS``: a speculation is
merged only on a clear yes. The verdict and the reasoning are recorded by the speculation
service in ``SpeculationValidated``; the call itself (model, exact request, answer, tokens,
cost priced like any model call's) in ``SpeculationJudged``, which the cost accounting and
the budgets count. A call that fails (the provider is down, say) is a ``FAILS`` verdict that
says why, not a crash of the validation.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loomkin.coordination.speculation import Judgement
from loomkin.core.chat import SystemMessage, UserMessage
from loomkin.errors import LoomkinError
from loomkin.llm.model import ModelRequest, complete

if TYPE_CHECKING:
    from loomkin.agents.factory import ModelFactory
    from loomkin.agents.roles import Role
    from loomkin.llm.pricing import PriceTable

__all__ = ["JUDGE_NAME", "ModelJudge"]

JUDGE_NAME = "speculation-judge"
"""The name the judge's model is made for (model factories may key on it)."""

_INSTRUCTIONS = (
    "You check an assumption another agent made before some work finished. Read the "
    "assumption and the real output of that work. Answer HOLDS or FAILS on the first line, "
    "then one or two sentences of reasoning. Answer HOLDS only if the real output clearly "
    "agrees with the assumption."
)


class ModelJudge:
    """Judges prose assumptions with a model made by the session's model factory."""

    def __init__(self, models: ModelFactory, role: Role, prices: PriceTable) -> None:
        self._models = models
        self._role = role
        self._prices = prices

    async def judge(self, assumption: str, output: str) -> Judgement:
        """The verdict on ``assumption`` given the real ``output``, with the call behind it."""
        model = self._models(self._role, JUDGE_NAME)
        request = ModelRequest(
            messages=(
                SystemMessage(text=_INSTRUCTIONS),
                UserMessage(
                    text=f"Assumption: {assumption}\n\nReal output:\n{output}", source="system"
                ),
            ),
            max_tokens=300,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            response = await complete(model, request)
        except LoomkinError as exc:
            reasoning = f"the judge's model call failed, counted as failed: {exc}"
            return Judgement(holds=False, reasoning=reasoning[:500])
        text = response.text.strip()
        first, _, rest = text.partition("\n")
        verdict = first.strip().upper()
        holds = verdict.startswith("HOLDS")
        reasoning = rest.strip() or text or "the judge gave no answer"
        if not (holds or verdict.startswith("FAILS")):
            reasoning = f"no clear verdict, counted as failed: {text[:200]}"
        cost = self._prices.cost(
            model.name,
            response.input_tokens,
            response.output_tokens,
            cached_input_tokens=response.cached_input_tokens,
            cache_write_tokens=response.cache_write_tokens,
        )
        return Judgement(
            holds=holds,
            reasoning=reasoning,
            model=model.name,
            request=request.to_json(),
            text=response.text,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            cost_usd=cost,
            latency_ms=(loop.time() - started) * 1000.0,
        )
