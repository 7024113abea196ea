"""The scripted team of the negotiation benchmark: agents with hidden strengths.

Each agent is strong at one task type. On a task of its type it needs one model call of work;
outside it, three calls, and the attempt fails 30 % of the time (its last call fails the
loop, which fails the task). With negotiation on, an agent that is handed a task outside its
strength counter-proposes the teammate strong at it (agents know each other's strengths; the
scheduler's capability estimate does not, and starts uninformed). The outcome of every
attempt is drawn from a generator seeded by (seed, task, agent, attempt), so a run is a
deterministic function of its parameters.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.scheduling import TaskType, infer_task_type
from loomkin.errors import ProviderError
from loomkin.testing.models import Call, Fail, FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.agents.roles import Role
    from loomkin.core.chat import ChatMessage
    from loomkin.llm.model import Model, ModelRequest

__all__ = ["TITLES", "Team", "TeamConfig"]

_BRIEF = re.compile(r"^\[Task assigned\] (?P<title>.*) \(task id (?P<task_id>\S+?), ")

TITLES: dict[TaskType, str] = {
    "coding": "implement module {n}",
    "testing": "test suite {n}",
    "documentation": "document the readme section {n}",
    "research": "research option {n}",
}
"""Task titles per type (each one infers to its type)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamConfig:
    """The team's hidden strengths and the cost of working outside them."""

    strengths: tuple[TaskType, ...] = ("coding", "testing", "documentation", "research")
    work_s: float = 60.0
    """Virtual seconds of one model call of work."""
    misfit_factor: int = 3
    misfit_failure: float = 0.3
    read_s: float = 5.0
    """Virtual seconds an agent spends reading a brief before it counter-proposes."""
    negotiate: bool = True
    seed: int = 0


@dataclass(slots=True)
class Counters:
    """Model calls of one agent, by what they were for."""

    work: int = 0
    """Calls that worked on a task (the surplus over one per task is waste)."""
    work_on_failed: int = 0
    """Work calls of attempts that failed."""
    negotiation: int = 0
    """The counter-proposals and the reply that ends the turn after a hand-over."""
    closing: int = 0
    """The reply after ``task_complete`` that ends a loop."""
    failed_attempts: int = 0
    misfit_attempts: int = 0
    attempts: int = 0


@dataclass(slots=True)
class Team:
    """The scripted models of the team, by agent name."""

    config: TeamConfig
    counters: dict[str, Counters] = field(default_factory=dict)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Agent names, one per strength (``coding0``, ``testing1`` …)."""
        return [f"{s}{i}" for i, s in enumerate(self.config.strengths)]

    def strength(self, name: str) -> TaskType:
        """The agent's hidden strength (its name ends with its index)."""
        index = int("".join(c for c in name if c.isdigit()))
        return self.config.strengths[index]

    def specialist(self, task_type: TaskType, *, not_: str = "") -> str | None:
        """A teammate strong at ``task_type`` (the first by index; never ``not_``)."""
        return next((n for n in self.names() if self.strength(n) == task_type and n != not_), None)

    def factory(self, _role: Role, name: str) -> Model:
        """The model factory of the session."""
        self.counters.setdefault(name, Counters())

        async def step(request: ModelRequest) -> Reply | Fail:
            return await self._step(name, request)

        return FunctionModel(step, name=f"bench:{name}")

    async def _step(self, name: str, request: ModelRequest) -> Reply | Fail:
        count = self.counters[name]
        found = _brief(request.messages)
        if found is None:
            return Reply(text="Nothing to do.")
        task_id, title, since = found
        task_type = infer_task_type(title)
        fits = task_type == self.strength(name)
        results = [m for m in since if isinstance(m, ToolResultMessage)]
        answered = sum(1 for m in since if isinstance(m, AssistantMessage))
        if any(r.name == "task_complete" and not r.is_error for r in results):
            count.closing += 1
            return Reply(text=f"{title}: done.")
        countered = [r for r in results if r.name == "task_counter"]
        if countered and "not yours now" in countered[-1].content:
            count.negotiation += 1
            return Reply(text="Handed over.")
        suggest = self.specialist(task_type, not_=name)
        if self.config.negotiate and not fits and not countered and suggest not in (None, name):
            count.negotiation += 1
            await asyncio.sleep(self.config.read_s)
            reason = f"{suggest} is our {task_type} specialist; I am not"
            args = {"kind": "suggest_agent", "agent": suggest, "reason": reason}
            return Reply(tool_calls=[Call("task_counter", dict(args))])
        return await self._work(name, task_id, title, fits, answered - len(countered), count)

    async def _work(
        self, name: str, task_id: str, title: str, fits: bool, done: int, count: Counters
    ) -> Reply | Fail:
        needed = 1 if fits else self.config.misfit_factor
        if done == 0:
            key = (task_id, name)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            count.attempts += 1
            count.misfit_attempts += 0 if fits else 1
        await asyncio.sleep(self.config.work_s)
        count.work += 1
        if done + 1 < needed:
            return Reply(tool_calls=[Call("task_read", {"task_id": task_id})])
        if not fits and self._fails(title, name, task_id):
            count.failed_attempts += 1
            count.work_on_failed += needed
            return Fail(ProviderError(f"{name} could not get {title!r} right"))
        result = {"result": f"{title}: done by {name}", "task_id": task_id}
        return Reply(tool_calls=[Call("task_complete", dict(result))])

    def _fails(self, title: str, name: str, task_id: str) -> bool:
        # Keyed by the title, not the id: ids are random, and a run must be reproducible.
        attempt = self.attempts.get((task_id, name), 1)
        draw = random.Random(f"{self.config.seed}:{title}:{name}:{attempt}").random()
        return draw < self.config.misfit_failure


def _brief(messages: Sequence[ChatMessage]) -> tuple[str, str, Sequence[ChatMessage]] | None:
    """The latest task brief (id, title) and the messages after it."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, UserMessage):
            match = _BRIEF.match(message.text)
            if match:
                return match["task_id"], match["title"], messages[index + 1 :]
    return None
