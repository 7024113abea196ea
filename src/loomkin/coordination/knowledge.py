"""Team knowledge: a keeper of findings per team, relevance-targeted insights, expert routing.

How this works and why:

* The keeper is a projection of ``InsightShared`` events, so the findings survive a restart
  (replaying the log rebuilds them). A finding belongs to its team and to every ancestor team
  it was propagated to (``propagate_depth`` levels up).
* :meth:`Knowledge.share` scores every other agent of the team and of the ancestor teams it
  propagates to (:mod:`loomkin.coordination.relevance`, with each agent's *current task text*
  and the files it touched) and sends the insight only to those at or above the threshold —
  a real subset, never a broadcast fallback.
* :meth:`Knowledge.route_question` picks the agent most likely to know the answer: the same
  scorer, with the agent's task text, files and the findings it wrote. Each pass to the next
  expert is one hop; past ``max_hops`` the asker is told nobody could answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.coordination.base import Member
from loomkin.coordination.relevance import THRESHOLD, Profile, Topic, score
from loomkin.core.events import Event, InsightShared, QuestionAsked, QuestionRouted
from loomkin.ids import AgentId, QuestionId, TeamId, new_id

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from loomkin.coordination.base import Context

__all__ = ["Knowledge", "Route"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where a question goes next."""

    member: Member
    score: float
    reason: str


class Knowledge:
    """Findings per team and the routing of insights and questions (one session)."""

    def __init__(
        self,
        ctx: Context,
        touched: Callable[[str], frozenset[str]],
        *,
        propagate_depth: int = 1,
        max_hops: int = 3,
    ) -> None:
        self.ctx = ctx
        self.touched = touched
        """Agent id → the files it touched (from the conflict detector)."""
        self.propagate_depth = propagate_depth
        self.max_hops = max_hops
        self.findings: dict[str, list[InsightShared]] = {}
        """Team id → findings it holds (its own and its sub-teams' propagated ones)."""
        self.hops: dict[str, list[str]] = {}
        """Question id → agents it was routed to, in order."""

    def on_event(self, event: Event) -> None:
        """Log listener (also used for the replay)."""
        match event:
            case InsightShared(team_id=team, propagated_to=ups):
                for team_id in (team, *ups):
                    self.findings.setdefault(team_id, []).append(event)
            case QuestionAsked(question_id=qid, hops=hops) if hops:
                self.hops.setdefault(qid, list(hops))
            case QuestionRouted(question_id=qid, to_agent=to):
                route = self.hops.setdefault(qid, [])
                if to not in route:
                    route.append(to)
            case _:
                pass

    def profile(self, member: Member) -> Profile:
        """What ``member`` is working on and known for."""
        written = " ".join(
            f.text for fs in self.findings.values() for f in fs if f.author == member.agent_id
        )
        return Profile(
            role=member.role,
            task_text=self.ctx.task_text(member.task_id),
            files=self.touched(member.agent_id),
            extra_text=written,
        )

    def _ancestors(self, team_id: TeamId) -> list[TeamId]:
        ups: list[TeamId] = []
        parent = self.ctx.state.parent(team_id)
        while parent is not None and len(ups) < self.propagate_depth:
            ups.append(parent.team_id)
            parent = self.ctx.state.parent(parent.team_id)
        return ups

    async def share(
        self, author: Member, text: str, *, kind: str = "insight", files: Sequence[str] = ()
    ) -> InsightShared:
        """Record a finding and send it to the agents it is relevant to."""
        ups = self._ancestors(author.team_id)
        teams = {author.team_id, *ups}
        topic = Topic(text=text, kind=kind, files=frozenset(f.lstrip("./") for f in files))
        scores: dict[str, float] = {}
        chosen: list[Member] = []
        for m in self.ctx.roster.members():
            if m.agent_id == author.agent_id or m.team_id not in teams:
                continue
            if m.status in ("done", "crashed"):
                continue
            s = score(topic, self.profile(m))
            scores[m.name] = s
            if s >= THRESHOLD:
                chosen.append(m)
        shared = InsightShared(
            session_id=self.ctx.session_id,
            insight_id=new_id("ins_"),
            team_id=author.team_id,
            author=author.agent_id,
            author_name=author.name,
            insight_type=kind,
            text=text,
            files=tuple(sorted(topic.files)),
            recipients=tuple(m.agent_id for m in chosen),
            scores=dict(scores),
            propagated_to=tuple(ups),
        )
        where = f" (files: {', '.join(shared.files)})" if shared.files else ""
        notes = [
            self.ctx.message(
                "insight",
                f"{author.name} found ({kind}){where}: {text}",
                to_agent=m.agent_id,
                from_name=author.name,
                data={"insight_id": shared.insight_id},
            )
            for m in chosen
        ]
        await self.ctx.log.append(shared, *notes)
        return shared

    def search(self, team_id: TeamId, words: str, limit: int = 10) -> list[InsightShared]:
        """The team's findings that contain every word of ``words`` (newest first)."""
        wanted = [w.lower() for w in words.split()]
        hits = [
            f
            for f in reversed(self.findings.get(team_id, []))
            if all(w in f"{f.text} {' '.join(f.files)}".lower() for w in wanted)
        ]
        return hits[:limit]

    def best_expert(self, asker: Member, question: str, exclude: set[str]) -> Route | None:
        """The agent most likely to answer ``question`` (None when nobody is left)."""
        topic = Topic(text=question, kind="question", files=frozenset())
        best: Route | None = None
        for m in self.ctx.roster.members():
            if m.agent_id == asker.agent_id or m.agent_id in exclude:
                continue
            if m.status in ("done", "crashed") or m.role in ("concierge", "orienter"):
                continue
            s = score(topic, self.profile(m))
            if best is None or s > best.score:
                reason = f"relevance {s:.2f} (role {m.role}"
                task = self.ctx.task_text(m.task_id).split("\n", 1)[0]
                reason += f", working on {task!r})" if task else ")"
                best = Route(member=m, score=s, reason=reason)
        return best

    def hops_of(self, question_id: str) -> list[str]:
        """Agents the question was routed to so far."""
        return list(self.hops.get(QuestionId(question_id), []))

    def routed(self, question_id: str, route: Route, hop: int) -> QuestionRouted:
        """The event recording one hop."""
        return QuestionRouted(
            session_id=self.ctx.session_id,
            question_id=QuestionId(question_id),
            to_agent=AgentId(route.member.agent_id),
            hop=hop,
            score=route.score,
            reason=route.reason,
        )
