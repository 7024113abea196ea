"""Team knowledge: a keeper of findings per team, relevance-targeted insights, expert routing.

How this works and why:

* The keeper is a projection of ``InsightShared`` events, so the findings survive a restart
  (replaying the log rebuilds them). A finding belongs to its team and to every ancestor team
  it was propagated to (``propagate_depth`` levels up).
* :meth:`Knowledge.share` scores every other agent of the author's team
  (:mod:`loomkin.coordination.relevance`, with each agent's *current task text* and the files
  it touched) and sends the finding only to those at or above the threshold — a real subset,
  never a broadcast fallback; blockers and warnings also reach the team's lead. It then
  climbs ``depth`` levels (default ``[comms] propagation_depth``): each ancestor team gets
  one notice saying which team it comes from, and keeps the finding in its knowledge
  (upward propagation, SPEC §3.5).
* :meth:`Knowledge.best_expert` picks the agent most likely to answer a question: the same
  scorer, with the agent's task text, files and the findings it wrote, among the agents the
  caller allows (the communication policy) and not yet asked. The hop limit and the deadline
  are the question's (the tools and the session's question book enforce them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.coordination.base import Member
from loomkin.coordination.relevance import THRESHOLD, Profile, Topic, score
from loomkin.core.events import (
    Event,
    InsightShared,
    MessageSent,
    QuestionAsked,
    QuestionForwarded,
    QuestionRouted,
)
from loomkin.ids import AgentId, QuestionId, TeamId, new_id

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from loomkin.coordination.base import Context

__all__ = ["Knowledge", "Route"]

_FOR_LEADS = frozenset({"blocker", "warning"})
"""Kinds of finding the team's lead always hears of (unblocking is its job)."""


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
    ) -> None:
        self.ctx = ctx
        self.touched = touched
        """Agent id → the files it touched (from the conflict detector)."""
        self.propagate_depth = propagate_depth
        """Levels a finding climbs by default (``[comms] propagation_depth``)."""
        self.findings: dict[str, list[InsightShared]] = {}
        """Team id → findings it holds (its own and its sub-teams' propagated ones)."""
        self.asked: dict[str, set[str]] = {}
        """Question id → the agents that asked it, were asked it or passed it on."""

    def on_event(self, event: Event) -> None:
        """Log listener (also used for the replay)."""
        match event:
            case InsightShared(team_id=team, propagated_to=ups):
                for team_id in (team, *ups):
                    self.findings.setdefault(team_id, []).append(event)
            case QuestionAsked(question_id=qid, asker=asker, to_agent=to):
                self.asked.setdefault(qid, set()).update(a for a in (asker, to) if a)
            case QuestionForwarded(question_id=qid, forwarded_by=by, to_agent=to):
                self.asked.setdefault(qid, set()).update(a for a in (by, to) if a)
            case QuestionRouted(question_id=qid, to_agent=to):
                self.asked.setdefault(qid, set()).add(to)
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

    def _ancestors(self, team_id: TeamId, depth: int) -> list[TeamId]:
        ups: list[TeamId] = []
        parent = self.ctx.state.parent(team_id)
        while parent is not None and len(ups) < depth:
            ups.append(parent.team_id)
            parent = self.ctx.state.parent(parent.team_id)
        return ups

    def _relevant(self, author: Member, topic: Topic) -> tuple[list[Member], dict[str, float]]:
        """The author's teammates the finding concerns, and every teammate's score."""
        scores: dict[str, float] = {}
        chosen: list[Member] = []
        for m in self.ctx.roster.members():
            if m.agent_id == author.agent_id or m.team_id != author.team_id:
                continue
            if m.status in ("done", "crashed"):
                continue
            s = score(topic, self.profile(m))
            scores[m.name] = s
            if s >= THRESHOLD or (topic.kind in _FOR_LEADS and m.role == "lead"):
                chosen.append(m)
        return chosen, scores

    async def share(
        self,
        author: Member,
        text: str,
        *,
        kind: str = "insight",
        files: Sequence[str] = (),
        depth: int | None = None,
    ) -> InsightShared:
        """Record a finding, send it to the teammates it concerns, and let it climb.

        Args:
            author: Who found it.
            text: The finding, self-contained.
            kind: insight, blocker, discovery, warning, bug, fix, ... (it weighs relevance).
            files: Files it concerns, relative to the project root.
            depth: Ancestor teams it climbs to (None: ``propagate_depth``; 0: the team only).
        """
        ups = self._ancestors(author.team_id, self.propagate_depth if depth is None else depth)
        topic = Topic(text=text, kind=kind, files=frozenset(f.lstrip("./") for f in files))
        chosen, scores = self._relevant(author, topic)
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
        await self.ctx.log.append(shared, *self._notices(author, shared, chosen))
        return shared

    def _notices(
        self, author: Member, shared: InsightShared, chosen: Sequence[Member]
    ) -> list[MessageSent]:
        where = f" (files: {', '.join(shared.files)})" if shared.files else ""
        label = shared.insight_type.capitalize()
        data = {"insight_id": shared.insight_id, "kind": shared.insight_type}
        notes = [
            self.ctx.messages.message(
                "insight",
                f"{label} from {author.name}{where}, relevant to your current work:\n{shared.text}",
                to_agent=m.agent_id,
                sender=author,
                data={**data, "levels": 0},
            )
            for m in chosen
        ]
        source = self.ctx.state.team(author.team_id).name
        for levels, team_id in enumerate(shared.propagated_to, start=1):
            below = "one level" if levels == 1 else f"{levels} levels"
            text = (
                f"{label} from team {source!r} ({below} below yours), shared by "
                f"{author.name}{where}:\n{shared.text}"
            )
            notes.append(
                self.ctx.messages.message(
                    "insight",
                    text,
                    to_team=TeamId(team_id),
                    sender=author,
                    data={**data, "source_team": author.team_id, "levels": levels},
                )
            )
        return notes

    def search(self, team_id: TeamId, words: str, limit: int = 10) -> list[InsightShared]:
        """The team's findings that contain every word of ``words`` (newest first)."""
        wanted = [w.lower() for w in words.split()]
        hits = [
            f
            for f in reversed(self.findings.get(team_id, []))
            if all(w in f"{f.text} {' '.join(f.files)}".lower() for w in wanted)
        ]
        return hits[:limit]

    def best_expert(
        self,
        question: str,
        exclude: Collection[str],
        allowed: Callable[[Member], bool] = lambda _m: True,
    ) -> Route | None:
        """The agent most likely to answer ``question`` (None when nobody is left).

        Args:
            question: The question's text.
            exclude: Ids of agents not to pick (the asker, and everyone asked so far).
            allowed: Which agents may be asked (the caller's communication policy).
        """
        topic = Topic(text=question, kind="question", files=frozenset())
        best: Route | None = None
        for m in self.ctx.roster.members():
            if m.agent_id in exclude or not allowed(m):
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

    def tried(self, question_id: str) -> set[str]:
        """Agents that asked ``question_id``, were asked it or passed it on."""
        return set(self.asked.get(question_id, ()))

    def routed(self, question_id: str, route: Route, hop: int) -> QuestionRouted:
        """The event recording that ``route`` was picked for ``question_id``."""
        return QuestionRouted(
            session_id=self.ctx.session_id,
            question_id=QuestionId(question_id),
            to_agent=AgentId(route.member.agent_id),
            hop=hop,
            score=route.score,
            reason=route.reason,
        )
