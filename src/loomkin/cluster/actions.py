"""Budget, task, speculation and other actions on a session a worker hosts, over NATS.

How this works and why:

* **One vocabulary, one subject.** A web app (or any client) that shows a cluster's sessions
  asks for these on the session's action subject (:meth:`ClusterNames.session_action`,
  request/reply); the worker holding the session answers. Every action is one small
  pydantic model with a ``kind`` (:data:`SessionAction`, unknown fields refused), checked
  where it is built and checked again by the worker before it touches the session, which
  then runs the one facade call it names (its ``apply``).
* **The reply** is ``{"ok": true, "result": <JSON>}`` (the facade's records as plain JSON)
  or ``{"ok": false, "code": ..., "error": ...}``. The code keeps the kind of refusal across
  the wire (:func:`refusal`), so a caller raises what the facade raised: an unknown task is
  still a :class:`~loomkin.errors.NotFound`, a claim that lost a :class:`InvalidTransition`.
* **Nobody answering** is not the caller's mistake: :class:`SessionNotHosted` (a web app
  answers 503). A session whose placement is done is refused at once (nothing hosts it).
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Literal, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from loomkin.errors import (
    InvalidTransition,
    LeaseError,
    LoomkinError,
    NotFound,
    PolicyRefused,
    TaskCycleError,
    UserError,
)

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON
    from loomkin.service import Session

__all__ = [
    "AddAssumption",
    "CancelSpeculation",
    "ClaimTask",
    "CreateRendezvous",
    "InspectAgent",
    "JoinRendezvous",
    "ListNegotiations",
    "ListRendezvous",
    "ListSpeculations",
    "RaiseBudgets",
    "ResolveNegotiation",
    "ScaleTeam",
    "SessionAction",
    "SessionNotHosted",
    "ShowBudgets",
    "ShowTeamScale",
    "Speculate",
    "answer_action",
    "refusal",
]

logger = logging.getLogger(__name__)

_ID = Annotated[str, Field(min_length=1, max_length=200)]
BudgetLimit = Literal[
    "session_usd", "team_usd", "agent_usd", "session_tokens", "team_tokens", "agent_tokens"
]
"""The limits a budget action may change (the facade's ``BUDGET_KEYS``)."""
_Limit = (
    Annotated[StrictInt, Field(ge=0)]
    | Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
    | None
)
"""A limit: a non-negative number (whole for tokens: the facade checks), or ``None``: none."""
_MAX_REPLY = 1024 * 1024
"""The largest reply a NATS server takes by default (``max_payload``)."""
RefusalCode = Literal["invalid", "not_found", "refused", "not_hosted", "failed"]


class SessionNotHosted(LoomkinError):
    """No worker hosts the session right now (it moves, or its worker is gone).

    The action was not applied; it may be asked again.
    """


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @classmethod
    def of(cls, **fields: object) -> Self:
        """The action with ``fields``, checked.

        Raises:
            UserError: a field is missing or invalid (the message names it).
        """
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise UserError(f"invalid {cls.__name__} action: {_problems(exc)}") from None

    @abstractmethod
    async def apply(self, session: Session) -> JsonValue:
        """Run the action's one facade call on ``session``; its result as JSON values.

        Raises:
            UserError: what the facade raises for it (an unknown task or agent, a refusal).
        """


class ShowBudgets(_Action):
    """The session's spend, then each team's, against the limits (``BudgetStatus`` rows)."""

    kind: Literal["budgets"] = "budgets"

    async def apply(self, session: Session) -> JsonValue:
        return _json([asdict(b) for b in session.budgets()])


class RaiseBudgets(_Action):
    """Change the limits named (``None`` removes one), resuming the agents they free."""

    kind: Literal["raise_budgets"] = "raise_budgets"
    changes: dict[BudgetLimit, _Limit]
    """The limits to change (none: the facade refuses, naming the limits there are)."""
    resume: bool = True

    async def apply(self, session: Session) -> JsonValue:
        changes = {str(k): v for k, v in self.changes.items()}
        update = await session.raise_budgets(changes, resume=self.resume)
        return _json({**asdict(update), "budgets": [asdict(b) for b in session.budgets()]})


class ClaimTask(_Action):
    """Give a ready task that has not started to ``agent`` (the work-stealing claim)."""

    kind: Literal["claim_task"] = "claim_task"
    task_id: _ID
    agent: _ID

    async def apply(self, session: Session) -> JsonValue:
        found = session.agent(self.agent)
        await session.claim_task(self.task_id, found.agent_id)
        return {"task_id": self.task_id, "agent_id": found.agent_id}


class ListNegotiations(_Action):
    """Negotiations of assignments, oldest first."""

    kind: Literal["negotiations"] = "negotiations"
    open_only: bool = False

    async def apply(self, session: Session) -> JsonValue:
        return _json([asdict(n) for n in session.negotiations(open_only=self.open_only)])


class ResolveNegotiation(_Action):
    """Answer an assignee's objection as the user (``reassign``: to ``agent``)."""

    kind: Literal["resolve_negotiation"] = "resolve_negotiation"
    task_id: _ID
    resolution: Literal["accept", "override", "reassign"]
    agent: Annotated[str, Field(max_length=200)] | None = None
    reason: Annotated[str, Field(max_length=2000)] = ""

    async def apply(self, session: Session) -> JsonValue:
        text = await session.resolve_negotiation(
            self.task_id, self.resolution, agent=self.agent, reason=self.reason
        )
        return {"result": text}


class ListSpeculations(_Action):
    """Every speculation of the session, with the counts, waste and hit rates."""

    kind: Literal["speculations"] = "speculations"

    async def apply(self, session: Session) -> JsonValue:
        infos = [asdict(i) for i in session.speculations()]
        return _json({"speculations": infos, "summary": asdict(session.speculation_summary())})


class Speculate(_Action):
    """Start ``task_id`` on ``agent`` ahead of its blockers, on the assumptions stated."""

    kind: Literal["speculate"] = "speculate"
    task_id: _ID
    agent: _ID
    assumptions: list[dict[str, JsonValue]] = Field(min_length=1, max_length=50)

    async def apply(self, session: Session) -> JsonValue:
        stated = cast("list[dict[str, JSON]]", self.assumptions)  # the same JSON values
        return _json(asdict(await session.speculate(self.task_id, self.agent, stated)))


class AddAssumption(_Action):
    """Add an assumption to the task's running speculation."""

    kind: Literal["add_assumption"] = "add_assumption"
    task_id: _ID
    assumption: dict[str, JsonValue]

    async def apply(self, session: Session) -> JsonValue:
        assumption = cast("dict[str, JSON]", self.assumption)
        return {"assumption_id": await session.add_assumption(self.task_id, assumption)}


class CancelSpeculation(_Action):
    """Discard the task's running speculation and queue the task again."""

    kind: Literal["cancel_speculation"] = "cancel_speculation"
    task_id: _ID

    async def apply(self, session: Session) -> JsonValue:
        await session.cancel_speculation(self.task_id)
        return {"task_id": self.task_id, "state": "discarded"}


class ShowTeamScale(_Action):
    """A team's size, backlog and bounds as the autoscaler sees them (default: the root)."""

    kind: Literal["team_scale"] = "team_scale"
    team: Annotated[str, Field(max_length=200)] | None = None

    async def apply(self, session: Session) -> JsonValue:
        return _json(asdict(session.team_scale(self.team)))


class ScaleTeam(_Action):
    """Pin or bound a team's worker agents for the autoscaler (``clear``: the defaults)."""

    kind: Literal["scale_team"] = "scale_team"
    team: Annotated[str, Field(max_length=200)] | None = None
    min_agents: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_agents: Annotated[int, Field(ge=1, le=1000)] | None = None
    pin: Annotated[int, Field(ge=0, le=1000)] | None = None
    clear: bool = False
    reason: Annotated[str, Field(max_length=2000)] = ""

    async def apply(self, session: Session) -> JsonValue:
        info = await session.scale_team(
            self.team,
            min_agents=self.min_agents,
            max_agents=self.max_agents,
            pin=self.pin,
            clear=self.clear,
            reason=self.reason,
        )
        return _json(asdict(info))


class ListRendezvous(_Action):
    """Rendezvous points: participants, who arrived, who is missing, the outcome."""

    kind: Literal["rendezvous"] = "rendezvous"

    async def apply(self, session: Session) -> JsonValue:
        return _json([asdict(r) for r in session.rendezvous()])


class CreateRendezvous(_Action):
    """Open a rendezvous as the user."""

    kind: Literal["create_rendezvous"] = "create_rendezvous"
    name: Annotated[str, Field(min_length=1, max_length=200)]
    participants: list[_ID] = Field(min_length=1, max_length=200)
    timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    on_complete: Literal["message", "create_task", "unblock_task"] = "message"
    message: Annotated[str, Field(max_length=20_000)] = ""
    notify: list[_ID] = Field(default_factory=list, max_length=200)
    task_title: Annotated[str, Field(max_length=500)] = ""
    task_team: Annotated[str, Field(max_length=200)] | None = None
    task_id: Annotated[str, Field(max_length=200)] | None = None

    async def apply(self, session: Session) -> JsonValue:
        created = await session.create_rendezvous(
            self.name,
            self.participants,
            timeout_s=self.timeout_s,
            action=self.on_complete,
            message=self.message,
            notify=self.notify,
            task_title=self.task_title,
            task_team=self.task_team,
            task_id=self.task_id,
        )
        return _json(asdict(created))


class JoinRendezvous(_Action):
    """Add participants (from any team) to an open rendezvous."""

    kind: Literal["join_rendezvous"] = "join_rendezvous"
    name: Annotated[str, Field(min_length=1, max_length=200)]
    agents: list[_ID] = Field(min_length=1, max_length=200)

    async def apply(self, session: Session) -> JsonValue:
        return {"added": list(await session.join_rendezvous(self.name, self.agents))}


class InspectAgent(_Action):
    """A snapshot of an agent: messages, step, tool, task, iteration, usage."""

    kind: Literal["inspect"] = "inspect"
    agent: _ID

    async def apply(self, session: Session) -> JsonValue:
        found = session.agent(self.agent)
        snapshot = await session.inspect(found.agent_id)
        return _json({"agent_id": found.agent_id, "snapshot": asdict(snapshot)})


SessionAction = Annotated[
    ShowBudgets
    | RaiseBudgets
    | ClaimTask
    | ListNegotiations
    | ResolveNegotiation
    | ListSpeculations
    | Speculate
    | AddAssumption
    | CancelSpeculation
    | ShowTeamScale
    | ScaleTeam
    | ListRendezvous
    | CreateRendezvous
    | JoinRendezvous
    | InspectAgent,
    Field(discriminator="kind"),
]
"""Every action a client may ask of the worker hosting a session."""

_ACTIONS: TypeAdapter[SessionAction] = TypeAdapter(SessionAction)


def _json(value: object) -> JsonValue:
    """A facade record (frozen dataclass), a list of them, or plain data, as JSON values."""
    return json.loads(json.dumps(value))  # type: ignore[no-any-return]


async def answer_action(
    session: Session | None, data: bytes, *, max_bytes: int = _MAX_REPLY
) -> bytes:
    """The worker's reply to one request on the action subject (never raises for bad input).

    ``max_bytes``: the largest message the bus carries; a larger answer (a long transcript
    inspected) is a refusal that says so, never a reply that cannot be sent.
    """
    try:
        action = _ACTIONS.validate_json(data)
    except ValidationError as exc:
        return _refused("invalid", f"not a session action: {_problems(exc)}")
    if session is None:
        return _refused("not_hosted", "the session is not running on this worker yet")
    try:
        result = await action.apply(session)
    except NotFound as exc:
        return _refused("not_found", str(exc))
    except (InvalidTransition, TaskCycleError, PolicyRefused) as exc:
        return _refused("refused", str(exc))
    except UserError as exc:
        return _refused("invalid", str(exc))
    except LeaseError as exc:
        return _refused("not_hosted", f"this worker lost the session: {exc}")
    except Exception as exc:  # answered, so the caller is not left waiting for a reply
        logger.exception("session %s: %s failed", session.session_id, action.kind)
        return _refused("failed", f"{action.kind} failed on the worker: {exc}")
    reply = json.dumps({"ok": True, "result": result}).encode()
    if len(reply) > max_bytes:
        return _refused(
            "failed",
            f"the answer to {action.kind} ({len(reply):,} bytes) is larger than the bus carries "
            f"({max_bytes:,} bytes)",
        )
    return reply


def _refused(code: RefusalCode, error: str) -> bytes:
    return json.dumps({"ok": False, "code": code, "error": error}).encode()


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    return "; ".join(parts)


def refusal(code: object, error: str) -> LoomkinError:
    """The error a refusal with ``code`` stands for, on the asking side."""
    match code:
        case "not_found":
            return NotFound(error)
        case "refused":
            return InvalidTransition(error)
        case "not_hosted":
            return SessionNotHosted(error)
        case "failed":
            return LoomkinError(error)
        case _:
            return UserError(error)
