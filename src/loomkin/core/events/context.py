"""Context management: an agent's transcript compacted to fit its model's window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loomkin.core.events.agents import AgentEvent
from loomkin.core.events.base import register

__all__ = ["ContextCompacted"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ContextCompacted(AgentEvent):
    """An agent's transcript was compacted before a model call that would not have fit.

    Replaying it rebuilds the same transcript: first the results of the calls in ``elided``
    are replaced by the short record given for each (the call itself stays, so a call is
    never split from its result); then, when ``summarised`` is above 0, the first
    ``summarised`` messages are replaced by the ones at ``kept`` (the task brief, the user's
    words, guidance, questions) followed by one message holding ``summary``.
    """

    kind: Literal["context_compacted"] = "context_compacted"
    elided: dict[str, str] = field(default_factory=dict)
    """Tool call id → the text that now stands for its result."""
    summarised: int = 0
    """How many messages from the start of the transcript the summary replaces."""
    kept: tuple[int, ...] = ()
    """Positions (below ``summarised``) of messages kept word for word, in order."""
    summary: str = ""
    """The text of the message that stands for the summarised turns."""
    tokens_before: int = 0
    """Estimated tokens of the request before compaction."""
    tokens_after: int = 0
    """Estimated tokens of the request after it."""
    window_tokens: int = 0
    """The model's context window the request must fit."""
    summarised_by_model: bool = False
    """Whether a model call wrote the summary (else it lists what the turns did)."""
    input_tokens: int = 0
    """Input tokens of the summarising model call (0 when none was made)."""
    output_tokens: int = 0
    cost_usd: float = 0.0
