"""Collective decisions: propose, vote with confidence and rationale, resolve by weight.

Weight of a vote (notes §11) = ``expertise × (0.5 + 0.25·capability + 0.25·confidence)``,
where expertise is 2.0 when the vote's scope is one of the voter role's strengths, 1.5 on a
partial match, 1.0 for the ``general`` scope and 0.5 otherwise. The winner has the largest
summed weight; ties go to the option with more votes, then to the option listed first (a
deterministic rule). Quorum: ``majority`` (winner > 50 % of the weight), ``supermajority``
(≥ 2/3) or ``unanimous`` (every voter voted, all for the winner). A vote closes when every
voter has voted, when the proposer resolves it, or at its deadline (a timer on the session's
``timers``). The outcome is a ``VoteResolved`` event, a ``decision`` node in the decision
graph and a ``vote_result`` message (high) to every voter. Requests reach voters as readable
text naming the options and the ``cast_vote`` call to make (the Elixir requests arrived as
raw tuples nobody could answer).

Deadlock policy (``on_deadlock``: escalate, the only one, and always applied; the Elixir
version recorded its policy but never applied it): a vote that closes without quorum is
escalated with an ``escalation`` message to the proposer's team lead — or, when the proposer
is that lead or the team has none, to the Concierge — listing the options, their tallies and
who did not vote, and asking them to decide.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from loomkin.core.events import (
    DecisionLogged,
    Event,
    MessageSent,
    VoteCast,
    VoteProposed,
    VoteResolved,
)
from loomkin.errors import ToolError
from loomkin.ids import AgentId, DecisionId, new_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.coordination.base import Context, Member
    from loomkin.core.events.base import JSON

__all__ = ["STRENGTHS", "Ballot", "Tally", "VoteBook", "expertise", "tally", "weight"]

Quorum = Literal["majority", "supermajority", "unanimous"]
STRENGTHS: dict[str, frozenset[str]] = {
    "lead": frozenset({"architecture", "planning", "coordination", "general"}),
    "coder": frozenset({"code", "implementation", "refactoring", "debugging"}),
    "researcher": frozenset({"research", "analysis", "investigation", "codebase"}),
    "reviewer": frozenset({"code", "review", "quality", "security"}),
    "tester": frozenset({"testing", "validation", "quality"}),
}


def expertise(role: str, scope: str) -> float:
    """How much a role knows about ``scope`` (2.0, 1.5, 1.0 or 0.5)."""
    strengths = STRENGTHS.get(role, frozenset())
    scope = scope.strip().lower()
    if scope in strengths:
        return 2.0
    if scope == "general":
        return 1.0
    if any(scope in s or s in scope for s in strengths):
        return 1.5
    return 0.5


def weight(role: str, scope: str, capability: float, confidence: float) -> float:
    """The weight of one vote."""
    cap = min(max(capability, 0.0), 1.0)
    conf = min(max(confidence, 0.0), 1.0)
    return round(expertise(role, scope) * (0.5 + 0.25 * cap + 0.25 * conf), 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ballot:
    """One vote as counted."""

    voter: str
    option: str
    weight: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """The count of a vote."""

    winner: str | None
    weights: dict[str, float]
    counts: dict[str, int]
    pct: float
    quorum_met: bool


def tally(
    options: Sequence[str], ballots: Sequence[Ballot], quorum: Quorum, eligible: int
) -> Tally:
    """Count ``ballots``: weighted winner, deterministic tie rule, quorum check."""
    weights = dict.fromkeys(options, 0.0)
    counts = dict.fromkeys(options, 0)
    for b in ballots:
        weights[b.option] += b.weight
        counts[b.option] += 1
    total = sum(weights.values())
    if not ballots or total <= 0:
        return Tally(winner=None, weights=weights, counts=counts, pct=0.0, quorum_met=False)
    order = {o: i for i, o in enumerate(options)}
    winner = min(options, key=lambda o: (-round(weights[o], 9), -counts[o], order[o]))
    pct = round(weights[winner] / total * 100.0, 2)
    if quorum == "majority":
        met = pct > 50.0
    elif quorum == "supermajority":
        met = pct >= 66.67
    else:
        met = len(ballots) == eligible and counts[winner] == len(ballots)
    return Tally(winner=winner, weights=weights, counts=counts, pct=pct, quorum_met=met)


@dataclass(slots=True)
class _Vote:
    proposed: VoteProposed
    ballots: dict[str, VoteCast] = field(default_factory=dict)
    closed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held from a command's "is it open?" check until its events are in the projection."""


class VoteBook:
    """Open and closed votes of one session (a projection) and the commands on them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.votes: dict[str, _Vote] = {}

    def on_event(self, event: Event) -> None:
        """Log listener."""
        match event:
            case VoteProposed(vote_id=vid):
                self.votes[vid] = _Vote(proposed=event)
            case VoteCast(vote_id=vid, voter=voter) if vid in self.votes:
                self.votes[vid].ballots[voter] = event
            case VoteResolved(vote_id=vid) if vid in self.votes:
                self.votes[vid].closed = True
            case _:
                pass

    def _vote(self, vote_id: str) -> _Vote:
        vote = self.votes.get(vote_id)
        if vote is None:
            raise ToolError(f"There is no vote {vote_id!r}.")
        return vote

    @staticmethod
    def _check_open(vote: _Vote) -> None:
        if vote.closed:
            raise ToolError(f"Vote {vote.proposed.vote_id!r} is already closed.")

    async def propose(
        self,
        proposer: Member,
        *,
        topic: str,
        options: Sequence[str],
        scope: str = "general",
        quorum: Quorum = "majority",
        deadline_s: float = 120.0,
    ) -> VoteProposed:
        """Open a vote among the proposer's team and send every voter a readable request."""
        opts = tuple(dict.fromkeys(o.strip() for o in options if o.strip()))
        if len(opts) < 2:
            raise ToolError("A vote needs at least two different options.")
        voters = self._voters(proposer)
        if len(voters) < 2:
            raise ToolError("A vote needs at least two agents in your team.")
        proposed = VoteProposed(
            session_id=self.ctx.session_id,
            vote_id=new_id("vote_"),
            team_id=proposer.team_id,
            proposer=proposer.agent_id,
            topic=topic,
            options=opts,
            voters=tuple(m.agent_id for m in voters),
            scope=scope,
            quorum=quorum,
            deadline=self.ctx.clock.now() + deadline_s,
        )
        text = _request_text(proposer.name, proposed, deadline_s)
        data: dict[str, JSON] = {"vote_id": proposed.vote_id}
        requests = [
            self.ctx.messages.message(
                "vote_request", text, to_agent=m.agent_id, from_name=proposer.name, data=data
            )
            for m in voters
        ]
        await self.ctx.log.append(proposed, *requests)
        self._arm(proposed)
        return proposed

    def _voters(self, proposer: Member) -> list[Member]:
        """The proposer's team, still working, without the session hosts."""
        return [
            m
            for m in self.ctx.roster.members()
            if m.team_id == proposer.team_id
            and m.status not in ("done", "crashed")
            and m.role not in ("concierge", "orienter")  # session hosts, not team members
        ]

    def _arm(self, proposed: VoteProposed) -> None:
        async def close_at_deadline() -> None:
            await asyncio.sleep(max(0.0, proposed.deadline - self.ctx.clock.now()))
            vote = self.votes.get(proposed.vote_id)
            if vote is None:
                return
            async with vote.lock:
                if not vote.closed:
                    await self._resolve(vote, reason="the deadline passed")

        self.ctx.timers.run(f"vote:{proposed.vote_id}", close_at_deadline)

    def rearm_open(self) -> None:
        """Arm the deadlines of votes still open after a replay."""
        for vote in self.votes.values():
            if not vote.closed:
                self._arm(vote.proposed)

    async def cast(
        self, voter: Member, vote_id: str, option: str, confidence: float, rationale: str
    ) -> VoteCast:
        """Record ``voter``'s vote; the vote resolves once everyone has voted."""
        vote = self._vote(vote_id)
        p = vote.proposed
        # Check and append under the vote's lock: a resolve (the deadline's, say) waits until
        # this ballot is in the projection, so a voter told "Voted" was counted. Without it the
        # deadline could tally while the cast was still being committed.
        async with vote.lock:
            self._check_open(vote)
            if voter.agent_id not in p.voters:
                raise ToolError(f"You are not a voter of {vote_id!r}.")
            matches = [o for o in p.options if o.lower() == option.strip().lower()]
            if not matches:
                choices = ", ".join(p.options)
                raise ToolError(f"{option!r} is not an option; choose one of: {choices}.")
            cast = VoteCast(
                session_id=self.ctx.session_id,
                vote_id=vote_id,
                voter=voter.agent_id,
                voter_name=voter.name,
                option=matches[0],
                confidence=min(max(confidence, 0.0), 1.0),
                rationale=rationale,
                weight=weight(voter.role, p.scope, voter.capability, confidence),
            )
            await self.ctx.log.append(cast)
            if set(vote.ballots) >= set(p.voters):
                await self._resolve(vote, reason="every voter voted")
        return cast

    async def resolve(self, vote_id: str, *, reason: str) -> VoteResolved:
        """Close the vote now with the votes cast so far; record and announce the outcome."""
        vote = self._vote(vote_id)
        async with vote.lock:
            return await self._resolve(vote, reason=reason)

    async def _resolve(self, vote: _Vote, *, reason: str) -> VoteResolved:
        """Close ``vote`` (its lock held) and append the outcome, decision and messages."""
        self._check_open(vote)
        vote.closed = True
        p = vote.proposed
        vote_id = p.vote_id
        ballots = [
            Ballot(voter=b.voter, option=b.option, weight=b.weight) for b in vote.ballots.values()
        ]
        t = tally(p.options, ballots, p.quorum, len(p.voters))
        decided = t.quorum_met and t.winner is not None
        events: list[Event] = []
        decision_id = None
        if decided:
            decision_id = DecisionId(new_id("dec_"))
            events.append(self._decision(p, t, decision_id, len(ballots)))
        resolved = VoteResolved(
            session_id=self.ctx.session_id,
            vote_id=vote_id,
            outcome="decided" if decided else "no_quorum",
            winner=t.winner if decided else None,
            weights={k: round(v, 4) for k, v in t.weights.items()},
            counts=dict(t.counts),
            winning_pct=t.pct,
            reason=reason,
            decision_id=decision_id,
        )
        escalated = None if decided else self._escalation(p, t, reason)
        escalation = [] if escalated is None else [escalated[1]]
        text = _result_text(p, t, decided, reason)
        if escalated is not None:
            text += f"\n{escalated[0].name} was asked to decide."
        notes = [
            self.ctx.messages.message(
                "vote_result",
                text,
                to_agent=AgentId(v),
                from_name="vote",
                data={"vote_id": vote_id},
            )
            for v in dict.fromkeys((*p.voters, p.proposer))
        ]
        await self.ctx.log.append(*events, resolved, *notes, *escalation)
        return resolved

    def _escalation(
        self, p: VoteProposed, t: Tally, reason: str
    ) -> tuple[Member, MessageSent] | None:
        """The deadlock policy: ask the proposer's lead (or the Concierge) to decide."""
        chain = [m for m in self.ctx.escalation_chain(p.team_id) if m.agent_id != p.proposer]
        if not chain:
            return None
        to = chain[0]
        proposer = self.ctx.member(p.proposer)
        by = proposer.name if proposer is not None else "an agent"
        missing = [
            m.name
            for v in p.voters
            if v not in self.votes[p.vote_id].ballots and (m := self.ctx.member(v)) is not None
        ]
        voted = len(p.voters) - len(missing)
        lines = [
            f"The vote on {p.topic!r} proposed by {by} ended without a decision ({reason}): "
            f"the {p.quorum} quorum was not reached, so it is yours to decide.",
            "Options and tallies:",
            *_tally_lines(p, t),
            f"{voted} of {len(p.voters)} voters voted"
            + (f"; not voted: {', '.join(missing)}." if missing else "."),
            "Decide it (record the choice with decision_log) and tell the team (peer_message), "
            "or re-open the vote with propose_vote.",
        ]
        message = self.ctx.messages.message(
            "escalation",
            "\n".join(lines),
            to_agent=to.agent_id,
            from_name="vote",
            data={"vote_id": p.vote_id, "on_deadlock": "escalate"},
        )
        return to, message

    def _decision(
        self, p: VoteProposed, t: Tally, decision_id: DecisionId, voted: int
    ) -> DecisionLogged:
        return DecisionLogged(
            session_id=self.ctx.session_id,
            decision_id=decision_id,
            team_id=p.team_id,
            node_type="decision",
            title=f"{p.topic}: {t.winner}",
            description=f"Collective decision ({p.quorum}, {voted} of {len(p.voters)} voted).",
            confidence=round(t.pct),
            metadata={
                "vote_id": p.vote_id,
                "winner": t.winner,
                "weights": {k: round(v, 4) for k, v in t.weights.items()},
                "counts": dict(t.counts),
                "quorum": p.quorum,
            },
        )


def _request_text(proposer_name: str, p: VoteProposed, deadline_s: float) -> str:
    listed = "\n".join(f"  {i}. {o}" for i, o in enumerate(p.options, 1))
    return (
        f"{proposer_name} asks the team to decide: {p.topic}\nOptions:\n{listed}\n"
        f"Scope: {p.scope}; quorum: {p.quorum}; the vote closes in {deadline_s:.0f} s.\n"
        f'Vote with cast_vote(vote_id="{p.vote_id}", option=<one of the options>, '
        "confidence=<0 to 1>, rationale=<one sentence>)."
    )


def _tally_lines(p: VoteProposed, t: Tally) -> list[str]:
    total = sum(t.weights.values())
    lines = []
    for option in p.options:
        count, w = t.counts[option], t.weights[option]
        share = f" ({w / total * 100:.0f}%)" if total > 0 else ""
        votes = "1 vote" if count == 1 else f"{count} votes"
        lines.append(f"- {option}: {votes}, weight {w:.2f}{share}")
    return lines


def _result_text(p: VoteProposed, t: Tally, decided: bool, reason: str) -> str:
    lines = [f"Vote on {p.topic!r} closed ({reason})."]
    if decided:
        lines.append(f"Decision: {t.winner} ({t.pct:.0f}% of the weighted vote).")
    else:
        lines.append(f"No decision: the {p.quorum} quorum was not reached.")
    return "\n".join([*lines, *_tally_lines(p, t)])
