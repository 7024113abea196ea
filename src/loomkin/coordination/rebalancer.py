"""The rebalancer: finds stuck and looping agents and recovers them in grades.

How this works and why:

* :class:`Watcher` is pure: it folds events (with the time they happened) and answers
  :meth:`Watcher.findings` — which agents are *stuck* (working, yet no activity for
  ``stuck_after_s``), *looping* (the same tool with the same arguments ``loop_repeats`` times
  with no progress in between; a write with new arguments, a milestone, partial output or a
  finished task is progress, so a test → fix → test chain is healthy) or in *delegation
  ping-pong* (one task handed back and forth between the same two agents). The benchmark
  (``python -m loomkin.bench rebalancer``) runs labelled trajectories through the same class.
* :class:`Rebalancer` checks every ``check_every_s`` (a timer on the session's ``timers``
  supervisor) and acts in grades per agent: two nudges, then the task is reassigned to an
  idle agent of the same role, then escalations to the lead, the Concierge, and the user.
  Every action is a ``RebalancerActed`` event; real progress resets the grade.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from loomkin.coordination.base import COORDINATION_ROLES
from loomkin.core.events import (
    AgentStatusChanged,
    Event,
    MessageSent,
    MilestoneEmitted,
    ModelCallCompleted,
    PartialResultPublished,
    RebalancerActed,
    TaskAssigned,
    TaskCreated,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.ids import AgentId, TaskId
from loomkin.tasks.service import WorkerRef

if TYPE_CHECKING:
    from loomkin.coordination.base import Context, Member

__all__ = ["Finding", "Rebalancer", "RebalancerSettings", "Watcher"]

Problem = Literal["stuck", "loop", "ping_pong"]
_WORKING = frozenset({"thinking", "executing_tool"})
_WRITES = frozenset({"file_write", "file_edit", "task_complete", "emit_milestone"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalancerSettings:
    """Thresholds of the rebalancer (``[rebalancer]`` in ``loomkin.toml``)."""

    stuck_after_s: float = 300.0
    check_every_s: float = 60.0
    loop_repeats: int = 3
    """Identical calls without progress that make a loop."""
    loop_window_s: float = 900.0
    handoffs: int = 3
    """Owner changes of one task between the same two agents that make a ping-pong."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem with one agent."""

    agent_id: str
    problem: Problem
    detail: str


@dataclass(slots=True)
class _Track:
    last_activity: float
    status: str = "idle"
    calls: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=64))
    seen_writes: set[str] = field(default_factory=set)


class Watcher:
    """Pure detection over a stream of events (see the module docstring)."""

    def __init__(self, settings: RebalancerSettings) -> None:
        self.settings = settings
        self.tracks: dict[str, _Track] = {}
        self._owners: dict[str, list[tuple[float, str]]] = {}
        self._titles: dict[str, str] = {}
        self._progress: set[str] = set()

    def _track(self, agent_id: str, now: float) -> _Track:
        return self.tracks.setdefault(agent_id, _Track(last_activity=now))

    def observe(self, event: Event, now: float) -> None:
        """Fold one event that happened at ``now``."""
        match event:
            case AgentStatusChanged(agent_id=aid, status=status):
                track = self._track(aid, now)
                if status in _WORKING and track.status not in _WORKING:
                    track.last_activity = now
                if status not in _WORKING:
                    track.calls.clear()
                track.status = status
            case ToolCallStarted(agent_id=aid, tool=tool, arguments=args):
                self._on_call(aid, tool, json.dumps(args, sort_keys=True), now)
            case ToolCallCompleted(agent_id=aid) | ModelCallCompleted(agent_id=aid):
                self._track(aid, now).last_activity = now
            case MessageSent(from_agent=aid) if aid is not None:
                self._track(aid, now).last_activity = now
            case MilestoneEmitted(by=aid) | PartialResultPublished(by=aid) if aid:
                self.progressed(aid, now)
            case TaskStatusChanged(by=aid, status="completed") if aid:
                self.progressed(aid, now)
            case TaskAssigned(task_id=tid, owner=owner):
                self._owners.setdefault(tid, []).append((now, owner))
            case TaskCreated(task_id=tid, title=title):
                self._titles[tid] = title  # findings name tasks by title: a model reads them
            case _:
                pass

    def _on_call(self, agent_id: str, tool: str, args: str, now: float) -> None:
        track = self._track(agent_id, now)
        track.last_activity = now
        sig = f"{tool} {args}"
        if tool in _WRITES and sig not in track.seen_writes:
            track.seen_writes.add(sig)
            self.progressed(agent_id, now)
            return
        track.calls.append((now, tool, sig))

    def progressed(self, agent_id: str, now: float) -> None:
        """Record real progress: the loop history is cleared and the grade resets."""
        track = self._track(agent_id, now)
        track.calls.clear()
        track.last_activity = now
        self._progress.add(agent_id)

    def take_progress(self) -> set[str]:
        """Agents that made progress since the last call."""
        done, self._progress = self._progress, set()
        return done

    def forget_calls(self, agent_id: str) -> None:
        """Start loop detection afresh for ``agent_id`` (after the rebalancer acted)."""
        if agent_id in self.tracks:
            self.tracks[agent_id].calls.clear()

    def findings(self, now: float) -> list[Finding]:
        """Every current problem, at most one per agent (loop, then ping-pong, then stuck)."""
        found: dict[str, Finding] = {}
        for aid, track in self.tracks.items():
            loop = self._loop(track, now)
            if loop is not None:
                found[aid] = Finding(agent_id=aid, problem="loop", detail=loop)
        for finding in self._ping_pongs(now):
            found.setdefault(finding.agent_id, finding)
        for aid, track in self.tracks.items():
            idle_s = now - track.last_activity
            if track.status in _WORKING and idle_s > self.settings.stuck_after_s:
                detail = f"no activity for {idle_s / 60:.0f} min while {track.status}"
                found.setdefault(aid, Finding(agent_id=aid, problem="stuck", detail=detail))
        return list(found.values())

    def _loop(self, track: _Track, now: float) -> str | None:
        counts: dict[str, int] = {}
        tools: dict[str, str] = {}
        for at, tool, sig in track.calls:
            if now - at <= self.settings.loop_window_s:
                counts[sig] = counts.get(sig, 0) + 1
                tools[sig] = tool
        for sig, count in counts.items():
            if count >= self.settings.loop_repeats:
                return (
                    f"called {tools[sig]} with the same arguments {count} times without "
                    "making progress"
                )
        return None

    def _ping_pongs(self, now: float) -> list[Finding]:
        out = []
        n = self.settings.handoffs + 1
        for tid, owners in self._owners.items():
            recent = [o for at, o in owners if now - at <= self.settings.loop_window_s][-n:]
            if len(recent) < n or len(set(recent)) != 2:
                continue
            if all(recent[i] != recent[i + 1] for i in range(len(recent) - 1)):
                title = self._titles.get(tid, tid)
                detail = f"task {title!r} was handed back and forth {n - 1} times"
                out.append(Finding(agent_id=recent[-1], problem="ping_pong", detail=detail))
                owners.clear()
        return out


class Rebalancer:
    """Acts on the :class:`Watcher`'s findings for one session (graded recovery)."""

    def __init__(self, ctx: Context, settings: RebalancerSettings | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or RebalancerSettings()
        self.watcher = Watcher(self.settings)
        self.strikes: dict[str, int] = {}
        self._acted_at: dict[str, float] = {}
        self._reassigned: set[str] = set()

    def on_event(self, event: Event) -> None:
        """Log listener."""
        self.watcher.observe(event, self.ctx.clock.now())
        for aid in self.watcher.take_progress():
            self.strikes.pop(aid, None)
            self._reassigned.discard(aid)

    async def run_forever(self) -> None:
        """Check every ``check_every_s`` (run it on the session's ``timers``)."""
        while True:
            await asyncio.sleep(self.settings.check_every_s)
            await self.check()

    async def check(self) -> list[RebalancerActed]:
        """Look for problems now and act on each; return the actions taken."""
        now = self.ctx.clock.now()
        actions = []
        for finding in self.watcher.findings(now):
            member = self.ctx.member(finding.agent_id)
            if member is None or member.role in COORDINATION_ROLES:
                continue
            last = self._acted_at.get(finding.agent_id)
            recent = last is not None and now - last <= self.settings.stuck_after_s
            if finding.problem == "stuck" and recent:
                continue
            actions.append(await self._act(member, finding, now))
        return actions

    async def _act(self, member: Member, finding: Finding, now: float) -> RebalancerActed:
        strike = self.strikes.get(member.agent_id, 0) + 1
        self.strikes[member.agent_id] = strike
        self._acted_at[member.agent_id] = now
        self.watcher.forget_calls(member.agent_id)
        if strike <= 2:
            return await self._nudge(member, finding, strike)
        if member.agent_id not in self._reassigned and member.task_id is not None:
            target = self._capable_peer(member)
            if target is not None:
                self._reassigned.add(member.agent_id)
                return await self._reassign(member, finding, strike, target)
        return await self._escalate(member, finding, strike)

    def _event(
        self,
        member: Member,
        finding: Finding,
        strike: int,
        *,
        action: Literal["nudge", "reassign", "escalate"],
        reassigned_to: AgentId | None = None,
        escalated_to: str | None = None,
    ) -> RebalancerActed:
        return RebalancerActed(
            session_id=self.ctx.session_id,
            agent_id=member.agent_id,
            problem=finding.problem,
            action=action,
            detail=finding.detail,
            strike=strike,
            task_id=member.task_id,
            reassigned_to=reassigned_to,
            escalated_to=escalated_to,
        )

    async def _nudge(self, member: Member, finding: Finding, strike: int) -> RebalancerActed:
        text = (
            f"You appear stuck: you {finding.detail}. Step back: re-read the task, try a "
            "different approach, break the task down, or ask for help (ask_question). If you "
            "are blocked, say so with task_update status 'blocked'."
        )
        if finding.problem == "stuck":
            text = text.replace("you no activity", "there was no activity")
        acted = self._event(member, finding, strike, action="nudge")
        nudge = self.ctx.messages.message(
            "nudge", text, to_agent=member.agent_id, from_name="rebalancer"
        )
        await self.ctx.log.append(acted, nudge)
        return acted

    def _capable_peer(self, member: Member) -> Member | None:
        peers = [
            m
            for m in self.ctx.roster.members()
            if m.team_id == member.team_id
            and m.agent_id != member.agent_id
            and m.role == member.role
            and m.status == "idle"
            and m.task_id is None
        ]
        peers.sort(key=lambda m: -m.capability)
        return peers[0] if peers else None

    async def _reassign(
        self, member: Member, finding: Finding, strike: int, target: Member
    ) -> RebalancerActed:
        assert member.task_id is not None
        task_id = TaskId(member.task_id)
        reason = f"reassigned by the rebalancer: {member.name} {finding.detail}"
        worker = WorkerRef(agent_id=target.agent_id, name=target.name, team_id=target.team_id)
        acted = self._event(
            member, finding, strike, action="reassign", reassigned_to=target.agent_id
        )
        stop = self.ctx.messages.message(
            "abort",
            f"Stop working on task {task_id}: it was reassigned to {target.name} because you "
            f"{finding.detail}. Do not change its files any further.",
            to_agent=member.agent_id,
            from_name="rebalancer",
            data={"task_id": task_id},
        )
        # One batch: the decision, the release, the new assignment and the old owner's notice.
        await self.ctx.tasks.reassign(
            task_id, worker, by="rebalancer", reason=reason, also=(acted, stop)
        )
        return acted

    async def _escalate(self, member: Member, finding: Finding, strike: int) -> RebalancerActed:
        chain = [
            m for m in self.ctx.escalation_chain(member.team_id) if m.agent_id != member.agent_id
        ]
        level = strike - 3 - (1 if member.agent_id in self._reassigned else 0)
        level = max(level, 0)
        if level < len(chain):
            boss = chain[level]
            who = "lead" if boss.role == "lead" else "concierge"
            acted = self._event(member, finding, strike, action="escalate", escalated_to=who)
            text = (
                f"Agent {member.name} ({member.role}) needs help: it {finding.detail}, and two "
                "nudges did not help. Check on it, steer it, reassign or cancel its task "
                "(abort_task)."
            )
            note = self.ctx.messages.message(
                "escalation", text, to_agent=AgentId(boss.agent_id), from_name="rebalancer"
            )
            await self.ctx.log.append(acted, note)
            return acted
        acted = self._event(member, finding, strike, action="escalate", escalated_to="user")
        await self.ctx.log.append(acted)
        return acted
