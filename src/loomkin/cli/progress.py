"""Live progress in the terminal: one readable line per event that matters to a person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from rich.markup import escape

from loomkin.core.events import (
    AgentPlaced,
    AgentSpawned,
    AgentStatusChanged,
    AssistantReplied,
    BudgetExceeded,
    ControlApplied,
    ControlDropped,
    ControlRequested,
    DecisionLogged,
    DependencyAdded,
    Event,
    LoopFinished,
    MessageSent,
    MilestoneEmitted,
    ModelCallCompleted,
    ModelCallFailed,
    PartialResultPublished,
    PermissionRequested,
    PermissionResolved,
    QuestionAsked,
    TaskAssigned,
    TaskCreated,
    TaskStatusChanged,
    TeamCreated,
    ToolCallCompleted,
    ToolCallStarted,
    UserMessagePosted,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.service import AgentInfo, Names

__all__ = ["Shown", "describe", "short"]


class Shown(Protocol):
    """What a progress line needs of a session.

    A ``Session`` of this process, or a cluster session as the shared store shows it.
    """

    @property
    def project_root(self) -> str: ...

    def names(self) -> Names: ...

    def agents(self) -> Sequence[AgentInfo]: ...


def _retrying(delay_s: float) -> str:
    """When a failed model call is tried again (at once after an interrupted attempt)."""
    return f"retrying in {delay_s:.1f} s" if delay_s > 0 else "retrying now"


def short(text: str, limit: int = 100) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _who(session: Shown, agent_id: str | None) -> str:
    if agent_id is None:
        return "system"
    agent = session.names().agent(agent_id)
    return escape(agent.name) if agent is not None else agent_id[:14]


def _task(session: Shown, task_id: str) -> str:
    task = session.names().task(task_id)
    return escape(repr(short(task.title, 80))) if task is not None else escape(task_id)


def _spend(session: Shown) -> str:
    """The session's spending so far, shown as tasks finish."""
    agents = session.agents()
    tokens = sum(a.input_tokens + a.output_tokens for a in agents)
    cost = sum(a.cost_usd for a in agents)
    return f" [dim]· so far {tokens:,} tokens, ${cost:.4f}[/]"


def _relative(session: Shown, target: str) -> str:
    root = session.project_root.rstrip("/") + "/"
    return target[len(root) :] if target.startswith(root) else target


def describe(event: Event, session: Shown) -> str | None:  # noqa: C901 - flat dispatch
    """Return the line to print for ``event`` (rich markup), or ``None`` to stay quiet."""
    match event:
        case UserMessagePosted(text=text):
            return f"[bold]you[/] → {escape(short(text))}"
        case AssistantReplied(agent_name=name, text=text):
            return f"[bold green]{escape(name)}[/] → you: {escape(text)}"
        case TeamCreated(name=name, depth=depth) if depth > 0:
            return f"[magenta]team[/] {escape(name)} created (depth {depth})"
        case AgentSpawned(name=name, role=role):
            return f"[magenta]spawn[/] {escape(name)} ({escape(role)})"
        case AgentPlaced(agent_id=aid, worker=worker, reason=reason):
            moved = f" ({escape(reason)})" if reason.startswith("moved") else ""
            return f"{_who(session, aid)} runs on worker [cyan]{escape(worker)}[/]{moved}"
        case ToolCallStarted(agent_id=aid, tool=tool, target=target):
            where = _relative(session, target)
            return f"{_who(session, aid)} [cyan]{escape(tool)}[/] {escape(short(where, 70))}"
        case ToolCallCompleted(agent_id=aid, tool=tool, result=result, outcome=outcome) if (
            outcome != "ok"
        ):
            what = escape(f"{tool} {outcome}")
            return f"{_who(session, aid)} [yellow]{what}[/]: {escape(short(result, 80))}"
        case TaskCreated(title=title, priority=priority):
            return f"[blue]task[/] created {escape(repr(short(title, 80)))} (p{priority})"
        case TaskAssigned(task_id=tid, owner_name=owner, reason=reason):
            who = escape(owner)
            return f"[blue]task[/] {_task(session, tid)} → {who} ({escape(short(reason, 70))})"
        case TaskStatusChanged(task_id=tid, status=status, by=by):
            line = f"[blue]task[/] {_task(session, tid)} {status} ({_who(session, by)})"
            return line + _spend(session) if status in ("completed", "failed") else line
        case DependencyAdded(task_id=tid, depends_on=dep, dep_kind=kind, milestone=milestone):
            what = escape(f"milestone {milestone!r} of ") if milestone else ""
            return (
                f"[blue]dep[/] {_task(session, tid)} waits ({kind}) for {what}{_task(session, dep)}"
            )
        case MilestoneEmitted(task_id=tid, name=name):
            return f"[bold blue]milestone[/] {escape(repr(name))} of {_task(session, tid)}"
        case PartialResultPublished(task_id=tid, seq=seq):
            return f"[blue]partial[/] chunk {seq} of {_task(session, tid)}"
        case MessageSent(msg_type="peer_message" | "question" | "answer", from_name=f, content=c):
            return f"{escape(f)} [white]✉[/] {escape(short(c, 80))}"
        case QuestionAsked(to_user=True, asker=aid, question=q, question_id=qid):
            return (
                f"[bold yellow]question[/] {_who(session, aid)} asks you: {escape(short(q, 100))} "
                f"(question {escape(qid)})"
            )
        case PermissionRequested(agent_id=aid, tool=tool, target=target):
            where = escape(_relative(session, target))
            who = _who(session, aid)
            return f"[bold yellow]permission[/] {who} asks to run {escape(tool)} {where}"
        case PermissionResolved(decision=decision, tool=tool, decided_by=by):
            return f"[yellow]permission[/] {escape(tool)}: {decision} (by {escape(by)})"
        case ControlRequested(agent_id=aid, action=action, text=text):
            extra = f": {escape(short(text, 60))}" if text else ""
            return f"[bold red]control[/] {action} {_who(session, aid)}{extra}"
        case ControlApplied(agent_id=aid, action=action, checkpoint=cp, latency_ms=ms):
            return f"[red]control[/] {action} applied to {_who(session, aid)} at {cp} ({ms:.0f} ms)"
        case ControlDropped(agent_id=aid, action=action, reason=reason):
            return f"[red]control[/] {action} of {_who(session, aid)} dropped ({reason})"
        case AgentStatusChanged(agent_id=aid, status="paused" | "crashed" as status, reason=r):
            return f"[red]{status}[/] {_who(session, aid)} {escape(r)}"
        case DecisionLogged(node_type="decision", title=title):  # not "decision decision: …"
            return f"[green]decision[/] {escape(title)}"
        case DecisionLogged(node_type=kind, title=title):
            return f"[green]decision[/] {escape(kind)}: {escape(title)}"
        case BudgetExceeded(agent_id=aid, scope=scope):
            return f"[bold red]budget[/] {scope} budget reached; {_who(session, aid)} paused"
        case ModelCallFailed(agent_id=aid, error=error, will_retry=True, attempt=n, delay_s=d):
            return (
                f"[yellow]retry[/] {_who(session, aid)}: model call failed (attempt {n}), "
                f"{_retrying(d)}: {escape(short(error, 80))}"
            )
        case ModelCallFailed(agent_id=aid, error=error):
            return f"[bold red]model error[/] {_who(session, aid)}: {escape(short(error))}"
        case LoopFinished(agent_id=aid, outcome=outcome, text=text) if outcome not in (
            "final",
            "paused",
        ):
            return f"[red]{outcome}[/] {_who(session, aid)}: {escape(short(text))}"
        case ModelCallCompleted():
            return None
        case _:
            return None
