"""The autoscaler of one session: a projection of its log plus the policy, acting by events.

How this works and why:

* **State from events** (replay and live alike) is :class:`~.memory.ScaleMemory`'s.
* **Reacting, not polling.** Live events that can change a team's load (tasks, agents, bounds)
  wake the loop; it also wakes at the next deadline the policy names (a hysteresis window
  ending, a cooldown, an idle agent's retirement), so virtual time works everywhere.
* **Decide, then act in one append.** A spawn is ``ScaleDecided`` + the agents'
  ``AgentSpawned`` + their onboarding briefs; a retirement is ``ScaleDecided`` + the
  retired agents' knowledge (``InsightShared``) + their last status (``done``).
* **Where an agent runs is not decided here.** The :class:`AgentPlacer` port builds the
  spawn and retirement events (the session's team operations, today in this process); a
  distributed runtime places them on workers without this module changing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from loomkin.coordination.autoscale.brief import legacy_text, onboarding_text
from loomkin.coordination.autoscale.memory import ScaleMemory, TeamScale
from loomkin.coordination.autoscale.policy import (
    Decision,
    TeamLoad,
    above,
    deadline,
    decide,
    joined,
)
from loomkin.coordination.autoscale.rebalance import TeamSide, plan_moves
from loomkin.coordination.base import COORDINATION_ROLES
from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    InsightShared,
    ScaleDecided,
)
from loomkin.errors import LoomkinError
from loomkin.ids import AgentId, TeamId, new_id
from loomkin.tasks.stealing import queued_tasks

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from loomkin.coordination.autoscale.settings import AutoscaleSettings
    from loomkin.coordination.base import Context, Member
    from loomkin.coordination.knowledge import Knowledge
    from loomkin.core.events import Event
    from loomkin.core.taskview import TaskView

__all__ = ["AgentPlacer", "Autoscaler", "TeamScale"]


class AgentPlacer(Protocol):
    """Builds the events that add or retire agents (the session's team operations)."""

    def spawn_events(
        self, team_id: TeamId, agents: Sequence[tuple[str, str]], *, spawned_by: str | None = None
    ) -> list[AgentSpawned]:
        """Check new agents ``(name, role)`` for ``team_id`` and return their events."""
        ...

    def retire_events(self, agent_id: AgentId, reason: str) -> list[AgentStatusChanged]:
        """The events that end ``agent_id`` (its status becomes ``done``)."""
        ...


class Autoscaler(ScaleMemory):
    """Grows and shrinks the teams of one session (see the module docstring)."""

    def __init__(
        self,
        ctx: Context,
        settings: AutoscaleSettings,
        placer: AgentPlacer,
        knowledge: Knowledge | None = None,
        may_talk: Callable[[TeamId, TeamId], bool] | None = None,
    ) -> None:
        super().__init__(ctx, settings)
        self.placer = placer
        self.knowledge = knowledge
        self.may_talk = may_talk or (lambda _a, _b: True)
        """The comms policy: capacity moves only between teams that may talk."""
        self._lock = asyncio.Lock()

    def caught_up(self) -> None:
        """Start the loop (when enabled) once the replay is over."""
        if self.settings.enabled:
            self.ctx.timers.run(f"autoscaler:{self.ctx.session_id}", self.run_forever)

    # -- the loop -------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Check on every wake-up and at every deadline (run it on the session's timers)."""
        while True:
            wait = self._next_deadline()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancel
            # that stops the session when the wake-up lands in the same turn, and this loop
            # then waits for ever with no deadline, so closing the runtime hangs.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # let the scheduler place what it can first
            await self.check()

    def _next_deadline(self) -> float | None:
        now = self.ctx.clock.now()
        times = [
            t
            for team_id in self._team_ids()
            if (t := deadline(self.load(team_id), self.settings)) is not None
        ]
        return None if not times else max(0.0, min(times) - now)

    async def check(self) -> list[ScaleDecided]:
        """Decide for every team now and act; return the decisions appended."""
        async with self._lock:
            await self._rebalance()
            made = []
            for team_id in self._team_ids():
                decided = await self._check_team(team_id)
                if decided is not None:
                    made.append(decided)
            return made

    def _team_ids(self) -> list[TeamId]:
        teams = {m.team_id for m in self.ctx.roster.members()}
        teams |= {
            v.team_id
            for v in self.ctx.tasks.board.ready_tasks()
            if v.session_id == self.ctx.session_id
        }
        return sorted(teams)

    # -- what a team looks like ---------------------------------------------------------------

    def workers(self, team_id: TeamId) -> list[Member]:
        """The team's worker agents (not coordination roles, not retired)."""
        return [
            m
            for m in self.ctx.roster.members()
            if m.team_id == team_id
            and m.role not in COORDINATION_ROLES
            and m.status not in ("done", "crashed")
        ]

    def backlog(self, team_id: TeamId) -> list[TaskView]:
        """Tasks of the team that could be worked now: unowned and ready, or queued."""
        board = self.ctx.tasks.board
        waiting = board.ready_tasks(team_id) + queued_tasks(board, team_id)
        return sorted(waiting, key=lambda v: (v.effective_priority, v.created_order))

    def load(self, team_id: TeamId) -> TeamLoad:
        """The policy's view of ``team_id`` now."""
        now = self.ctx.clock.now()
        workers = self.workers(team_id)
        active = self.ctx.tasks.board.load()
        idle = [
            m.agent_id
            for m in workers
            if m.status == "idle"
            and m.task_id is None
            and not active.get(m.agent_id)
            and m.agent_id not in self.onboarding
        ]
        idle.sort(key=lambda a: self.idle_since.get(a, now))
        scale = self.team(team_id)
        return TeamLoad(
            now=now,
            ready_roles=tuple(v.role for v in self.backlog(team_id)),
            idle=tuple(idle),
            idle_since={a: self.idle_since.get(AgentId(a), now) for a in idle},
            onboarding=sum(1 for m in workers if m.agent_id in self.onboarding),
            size=len(workers),
            above_since=scale.above_since,
            last_spawn=scale.last_spawn,
            upcoming=sum(
                1
                for v in self.ctx.tasks.board.tasks(team_id)
                if v.status == "pending"
                and v.owner is None
                and not self.ctx.tasks.board.is_ready(v.task_id)
            ),
            soon=self.soon(team_id) if self.settings.anticipate else 0,
            spent_usd=sum(m.cost_usd for m in self.ctx.roster.members()),
            agents_ever=self.worker_count,
        )

    def soon(self, team_id: TeamId) -> int:
        """Unowned tasks not ready yet, each waiting only on milestones of tasks in progress.

        Their wait is for part of work already under way, so an agent spawned now finishes
        onboarding about when they become ready. A wait for a whole task is left out: it may
        be long, and agents spawned for it would idle (measured: counting those too doubled
        the agent-seconds of some graphs for no makespan gained).
        """
        board = self.ctx.tasks.board
        count = 0
        for v in board.tasks(team_id):
            if v.status != "pending" or v.owner is not None or board.is_ready(v.task_id):
                continue
            unmet = board.waiting_on(v.task_id)
            if unmet and all(
                d.milestone is not None and board.task(d.depends_on).status == "in_progress"
                for d in unmet
            ):
                count += 1
        return count

    async def _check_team(self, team_id: TeamId) -> ScaleDecided | None:
        scale = self.team(team_id)
        load = self.load(team_id)
        if above(load, self.settings):
            if scale.above_since is None:
                scale.above_since = load.now
                load = replace(load, above_since=load.now)
        else:
            scale.above_since = None
            load = replace(load, above_since=None)
        decision = decide(load, self.settings, scale.bounds)
        if decision is None:
            return None
        if decision.action == "hold":
            key = decision.reason.split("no spawn:")[-1].split("(")[0]
            if scale.hold and scale.hold.split("no spawn:")[-1].split("(")[0] == key:
                return None
            return await self._append(team_id, decision, load, [])
        if decision.action == "spawn":
            return await self._spawn(team_id, decision, load)
        return await self._retire(team_id, decision, load)

    # -- capacity rebalancing -------------------------------------------------------------------

    def _side(self, team_id: TeamId) -> TeamSide:
        load = self.load(team_id)
        roles = {m.agent_id: m.role for m in self.workers(team_id)}
        since = self.team(team_id).above_since
        return TeamSide(
            team_id=team_id,
            name=self.ctx.state.team(team_id).name,
            ready=tuple(self.ctx.tasks.board.ready_tasks(team_id)),
            idle_roles=tuple(roles[AgentId(a)] for a in load.idle),
            backlog_held_s=None if since is None else load.now - since,
        )

    async def _rebalance(self) -> None:
        """Move ready tasks from a backlogged team to idle sibling teams (before spawning)."""
        state = self.ctx.state
        for team_id in self._team_ids():
            if self.team(team_id).above_since is None:
                continue
            siblings = [
                self._side(TeamId(t.team_id))
                for t in state.siblings(team_id)
                if self.may_talk(team_id, TeamId(t.team_id))
            ]
            if not siblings:
                continue
            for move in plan_moves(self._side(team_id), siblings, window_s=self.settings.window_s):
                try:
                    await self.ctx.tasks.move(move.task.task_id, move.to_team, reason=move.reason)
                except LoomkinError:  # assigned meanwhile: nothing to move any more
                    continue

    # -- acting ---------------------------------------------------------------------------------

    def _event(
        self,
        team_id: TeamId,
        decision: Decision,
        load: TeamLoad,
        agents: Sequence[Member | AgentSpawned],
    ) -> ScaleDecided:
        return ScaleDecided(
            session_id=self.ctx.session_id,
            team_id=team_id,
            action=decision.action,
            reason=decision.reason,
            agents=tuple(a.name for a in agents),
            agent_ids=tuple(a.agent_id for a in agents),
            role=joined(decision.roles) if decision.roles else joined([a.role for a in agents]),
            ready=decision.ready,
            idle=decision.idle,
            size=load.size,
            ratio=None if decision.ratio is None else round(decision.ratio, 4),
            threshold=self.settings.scale_up_ratio,
            max_size=self.team(team_id).bounds.ceiling,
            projected_usd=decision.projected_usd,
            budget_left_usd=decision.budget_left_usd,
        )

    async def _append(
        self,
        team_id: TeamId,
        decision: Decision,
        load: TeamLoad,
        agents: Sequence[Member],
        *more: Event,
    ) -> ScaleDecided:
        decided = self._event(team_id, decision, load, agents)
        await self.ctx.log.append(decided, *more)
        return decided

    def _names(self, team_id: TeamId, roles: Sequence[str]) -> list[tuple[str, str]]:
        taken = {m.name for m in self.ctx.roster.members() if m.team_id == team_id}
        out = []
        n = 0
        for role in roles:
            n += 1
            while f"{role}-{n}" in taken:
                n += 1
            name = f"{role}-{n}"
            taken.add(name)
            out.append((name, role))
        return out

    async def _spawn(self, team_id: TeamId, decision: Decision, load: TeamLoad) -> ScaleDecided:
        spawned = self.placer.spawn_events(team_id, self._names(team_id, decision.roles))
        decided = self._event(team_id, decision, load, spawned)
        team = self.ctx.state.team(team_id).name
        knowledge = self._findings(team_id)
        waiting = self.backlog(team_id)[:8]
        why = decision.reason.split("; spawning")[0]
        briefs = [
            self.ctx.messages.message(
                "onboarding",
                onboarding_text(
                    name=s.name,
                    team=team,
                    why=why,
                    orienter_brief=self.orienter_brief,
                    findings=knowledge,
                    waiting=waiting,
                ),
                to_agent=s.agent_id,
                from_name="autoscaler",
                data={"team_id": team_id},
            )
            for s in spawned
        ]
        # One batch: a crash never leaves a decision without its agents, or an agent unbriefed.
        await self.ctx.log.append(decided, *spawned, *briefs)
        return decided

    def _findings(self, team_id: TeamId) -> list[InsightShared]:
        if self.knowledge is None:
            return []
        return self.knowledge.findings.get(team_id, [])[-5:]

    async def _retire(self, team_id: TeamId, decision: Decision, load: TeamLoad) -> ScaleDecided:
        members = [m for a in decision.retire if (m := self.ctx.member(a)) is not None]
        board = self.ctx.tasks.board
        more: list[Event] = []
        for member in members:
            finished = [
                v
                for v in board.tasks(team_id)
                if v.status == "completed"
                and v.owner is not None
                and v.owner.agent_id == member.agent_id
            ]
            text = legacy_text(member.name, member.role, finished)
            if text:
                more.append(
                    InsightShared(
                        session_id=self.ctx.session_id,
                        insight_id=new_id("ins_"),
                        team_id=team_id,
                        author=AgentId(member.agent_id),
                        author_name=member.name,
                        insight_type="discovery",
                        text=text,
                        files=tuple(
                            f for v in finished if v.handoff for f in v.handoff.files_changed
                        ),
                    )
                )
            more.extend(self.placer.retire_events(AgentId(member.agent_id), decision.reason))
        # One batch: the decision, what the agents learned, and their end.
        return await self._append(team_id, decision, load, members, *more)
