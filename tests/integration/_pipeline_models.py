"""Scripted workers for the task-scheduling tests: they read the brief the runtime built.

One step function serves every agent (the scheduler decides who gets which task): it finds
the latest ``[Task assigned]`` brief in the request, looks the task up by its title in a
:class:`Playbook`, and plays that task's part, spending its work in virtual time. Everything
else — the loop, the tools, the task board, the scheduler, the messages — is the real
runtime.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, ChatMessage, ToolResultMessage, UserMessage
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.core.events import JSON
    from loomkin.llm.model import Model, ModelRequest

__all__ = [
    "NUDGE",
    "Playbook",
    "Turn",
    "answered",
    "batch",
    "consumer",
    "current_turn",
    "ids_in",
    "integrator",
    "producer",
    "steps",
]

BRIEF = re.compile(r"^\[Task assigned\] (?P<title>.*) \(task id (?P<task_id>\S+?), priority \d\)")
NUDGE = "[System] Your task is still open."
IDS = re.compile(r"\btask_[0-9a-f]{8}-[0-9a-f-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """What the agent has in front of it for its current task."""

    task_id: str
    title: str
    brief: str
    since: tuple[ChatMessage, ...]
    """Everything after the brief, in order."""

    def inputs(self) -> str:
        """The texts of the user/system messages after the brief."""
        return "\n".join(m.text for m in self.since if isinstance(m, UserMessage))

    def results(self, tool: str, *, ok: bool = True) -> list[str]:
        """Results of this tool since the brief (successful ones, or failed ones)."""
        return [
            m.content
            for m in self.since
            if isinstance(m, ToolResultMessage) and m.name == tool and m.is_error != ok
        ]

    def nudged(self) -> bool:
        """True when the last input is the loop's 'your task is still open' nudge."""
        last = self.since[-1] if self.since else None
        return isinstance(last, UserMessage) and last.text.startswith(NUDGE)


Behaviour = Callable[[Turn], Awaitable[Reply]]


@dataclass(slots=True)
class Playbook:
    """Behaviours by task title; the agents' shared script."""

    parts: dict[str, Behaviour] = field(default_factory=dict)
    models: dict[str, FunctionModel] = field(default_factory=dict)
    """The model of each agent, by agent name."""

    def factory(self, _role: Role, name: str) -> Model:
        if name not in self.models:
            self.models[name] = FunctionModel(self.step, name=f"scripted:{name}")
        return self.models[name]

    async def step(self, request: ModelRequest) -> Reply:
        turn = current_turn(request.messages)
        if turn is None:
            return Reply(text="Nothing to do.")
        if turn.nudged():
            return Reply(text=f"Still working on {turn.title}; waiting for input.")
        part = self.parts.get(turn.title)
        if part is None:
            return Reply(text=f"I do not know how to do {turn.title!r}.")
        return await part(turn)

    def seen(self, agent: str) -> str:
        """Every user/system text the agent's model was shown, joined."""
        model = self.models[agent]
        return "\n".join(
            m.text for r in model.requests for m in r.messages if isinstance(m, UserMessage)
        )


def current_turn(messages: Sequence[ChatMessage]) -> Turn | None:
    """The latest task brief and what followed it."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, UserMessage):
            match = BRIEF.match(message.text)
            if match:
                return Turn(
                    task_id=match["task_id"],
                    title=match["title"],
                    brief=message.text,
                    since=tuple(messages[index + 1 :]),
                )
    return None


def answered(turn: Turn) -> int:
    """How many model answers the agent gave since the brief."""
    return sum(1 for m in turn.since if isinstance(m, AssistantMessage))


def steps(*plan: tuple[float, Sequence[Call] | str]) -> Behaviour:
    """A fixed plan: answer k waits ``plan[k][0]`` virtual seconds, then makes those calls."""

    async def play(turn: Turn) -> Reply:
        k = answered(turn)
        if k >= len(plan):
            return Reply(text=f"{turn.title}: done.")
        work, what = plan[k]
        if work:
            await asyncio.sleep(work)
        return Reply(text=what) if isinstance(what, str) else Reply(tool_calls=list(what))

    return play


# -- the pipeline: A produces → B consumes incrementally → C integrates ----------------------


def batch(k: int, size: int) -> str:
    """The content of producer chunk ``k``: ``size`` record names."""
    return f"records batch {k}: " + " ".join(f"rec-{k}-{i:04d}" for i in range(size))


def producer(batches: Sequence[int], *, work_s: float) -> Behaviour:
    """Publish one chunk per answer (``batches[k]`` records each), then complete."""
    total = len(batches)
    plan: list[tuple[float, Sequence[Call] | str]] = [
        (
            work_s,
            [
                Call(
                    "publish_partial",
                    {"content": batch(k, size), "completed_items": k, "total_items": total},
                )
            ],
        )
        for k, size in enumerate(batches, start=1)
    ]
    plan.append((work_s, [Call("task_complete", {"result": f"{total} record batches produced"})]))
    return steps(*plan)


_CHUNK_IN_BRIEF = re.compile(r"^\[chunk (\d+)\] ", re.MULTILINE)
_CHUNK_NOTICE = re.compile(r"published chunk (\d+) \((\d+)/(\d+) items\)")
_OWN_CHUNKS = re.compile(r"^Partial output #\d+:", re.MULTILINE)
_TOTAL_IN_BRIEF = re.compile(r"(\d+)/(\d+) items done")


def _upstream(turn: Turn) -> tuple[set[int], int | None]:
    """Chunk numbers of the predecessor seen so far, and its announced total."""
    seen = {int(n) for n in _CHUNK_IN_BRIEF.findall(turn.brief)}
    total: int | None = None
    found = _TOTAL_IN_BRIEF.search(turn.brief)
    if found:
        total = int(found[2])
    for seq, _done, of in _CHUNK_NOTICE.findall(turn.inputs()):
        seen.add(int(seq))
        total = int(of)
    return seen, total


def _upstream_done(turn: Turn) -> bool:
    """Whether the predecessor said it completed (its last chunk is then in already)."""
    return "no more chunks will come" in turn.inputs() or "(completed):" in turn.brief


def _blocked(turn: Turn) -> bool:
    state = False
    for text in turn.results("task_update"):
        state = text.endswith("is now blocked.")
    return state


def _published(turn: Turn) -> int | None:
    """How many chunks the agent published; ``None`` when it must check (interrupted call)."""
    done: int | None = 0
    for m in turn.since:
        if not isinstance(m, ToolResultMessage):
            continue
        if m.name == "publish_partial" and not m.is_error and done is not None:
            done += 1
        elif m.name == "publish_partial" and m.content.startswith("interrupted"):
            done = None
        elif m.name == "task_read" and not m.is_error:
            done = len(_OWN_CHUNKS.findall(m.content))
    return done


def consumer(*, work_s: float) -> Behaviour:
    """Transform each upstream chunk into one of its own; wait (blocked) when none is new."""

    async def play(turn: Turn) -> Reply:
        if turn.results("task_complete"):
            return Reply(text=f"{turn.title}: done.")
        seen, total = _upstream(turn)
        done = _published(turn)
        if done is None:  # a publish was cut off by a restart: look before publishing again
            return Reply(tool_calls=[Call("task_read", {"task_id": turn.task_id})])
        finished = _upstream_done(turn) and done == max(seen, default=0)
        if (done + 1 in seen or finished) and _blocked(turn):
            return Reply(tool_calls=[Call("task_update", {"status": "in_progress"})])
        if done + 1 in seen:
            await asyncio.sleep(work_s)
            content = f"transformed batch {done + 1}"
            args: dict[str, JSON] = {"content": content, "completed_items": done + 1}
            if total is not None:
                args["total_items"] = total
            return Reply(tool_calls=[Call("publish_partial", args)])
        if finished:
            result = f"transformed {total} batches"
            return Reply(tool_calls=[Call("task_complete", {"result": result})])
        if not _blocked(turn):
            note = "waiting for the next batch of records"
            return Reply(tool_calls=[Call("task_update", {"status": "blocked", "note": note})])
        return Reply(text="Waiting for the next batch of records.")

    return play


def integrator(*, work_s: float) -> Behaviour:
    """Integrate and complete with a structured hand-off."""
    complete: dict[str, JSON] = {
        "result": "integrated the transformed records",
        "actions_taken": ["merged the transformed batches"],
        "files_changed": ["records.json"],
    }
    return steps((work_s, [Call("task_complete", complete)]))


def ids_in(text: str) -> list[str]:
    """Task ids mentioned in ``text``, in order."""
    return IDS.findall(text)
