"""Budget, task and speculation actions on a session a worker hosts, sent over NATS.

How this works and why:

* **One vocabulary, one subject.** A web app (or any client) that shows a cluster's sessions
  asks for these on the session's action subject (:meth:`ClusterNames.session_action`,
  request/reply); the worker holding the session answers. Every action is one small
  pydantic model with a ``kind`` (:data:`SessionAction`, unknown fields refused), checked
  where it is built and checked again by the worker before it touches the session, which
  then runs the one facade call it names (:func:`perform`).
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
    "ListNegotiations",
    "ListSpeculations",
    "RaiseBudgets",
    "ResolveNegotiation",
    "SessionAction",
    "SessionNotHosted",
    "ShowBudgets",
    "Speculate",
    "answer_action",
    "perform",
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


class ShowBudgets(_Action):
    """The session's spend, then each team's, against the limits (``BudgetStatus`` rows)."""

    kind: Literal["budgets"] = "budgets"


class RaiseBudgets(_Action):
    """Change the limits named (``None`` removes one), resuming the agents they free."""

    kind: Literal["raise_budgets"] = "raise_budgets"
    changes: dict[BudgetLimit, _Limit]
    """The limits to change (none: the facade refuses, naming the limits there are)."""
    resume: bool = True


class ClaimTask(_Action):
    """Give a ready task that has not started to ``agent`` (the work-stealing claim)."""

    kind: Literal["claim_task"] = "claim_task"
    task_id: _ID
    agent: _ID


class ListNegotiations(_Action):
    """Negotiations of assignments, oldest first."""

    kind: Literal["negotiations"] = "negotiations"
    open_only: bool = False


class ResolveNegotiation(_Action):
    """Answer an assignee's objection as the user (``reassign``: to ``agent``)."""

    kind: Literal["resolve_negotiation"] = "resolve_negotiation"
    task_id: _ID
    resolution: Literal["accept", "override", "reassign"]
    agent: Annotated[str, Field(max_length=200)] | None = None
    reason: Annotated[str, Field(max_length=2000)] = ""


class ListSpeculations(_Action):
    """Every speculation of the session, with the counts, waste and hit rates."""

    kind: Literal["speculations"] = "speculations"


class Speculate(_Action):
    """Start ``task_id`` on ``agent`` ahead of its blockers, on the assumptions stated."""

    kind: Literal["speculate"] = "speculate"
    task_id: _ID
    agent: _ID
    assumptions: list[dict[str, JsonValue]] = Field(min_length=1, max_length=50)


class AddAssumption(_Action):
    """Add an assumption to the task's running speculation."""

    kind: Literal["add_assumption"] = "add_assumption"
    task_id: _ID
    assumption: dict[str, JsonValue]


class CancelSpeculation(_Action):
    """Discard the task's running speculation and queue the task again."""

    kind: Literal["cancel_speculation"] = "cancel_speculation"
    task_id: _ID


SessionAction = Annotated[
    ShowBudgets
    | RaiseBudgets
    | ClaimTask
    | ListNegotiations
    | ResolveNegotiation
    | ListSpeculations
    | Speculate
    | AddAssumption
    | CancelSpeculation,
    Field(discriminator="kind"),
]
"""Every action a client may ask of the worker hosting a session."""

_ACTIONS: TypeAdapter[SessionAction] = TypeAdapter(SessionAction)


def _json(value: object) -> JsonValue:
    """A facade record (frozen dataclass), a list of them, or plain data, as JSON values."""
    return json.loads(json.dumps(value))  # type: ignore[no-any-return]


async def perform(session: Session, action: SessionAction) -> JsonValue:
    """Run ``action`` on ``session`` (one facade call); return its result as JSON values.

    Raises:
        UserError: what the facade raises for it (an unknown task or agent, a refused change).
    """
    match action:
        case ShowBudgets():
            return _json([asdict(b) for b in session.budgets()])
        case RaiseBudgets(changes=changes, resume=resume):
            update = await session.raise_budgets(
                {str(k): v for k, v in changes.items()}, resume=resume
            )
            budgets = [asdict(b) for b in session.budgets()]
            return _json({**asdict(update), "budgets": budgets})
        case ClaimTask(task_id=task_id, agent=agent):
            found = session.agent(agent)
            await session.claim_task(task_id, found.agent_id)
            return {"task_id": task_id, "agent_id": found.agent_id}
        case ListNegotiations(open_only=open_only):
            return _json([asdict(n) for n in session.negotiations(open_only=open_only)])
        case ResolveNegotiation(task_id=task_id, resolution=resolution, agent=to, reason=reason):
            text = await session.resolve_negotiation(task_id, resolution, agent=to, reason=reason)
            return {"result": text}
        case ListSpeculations():
            infos = [asdict(i) for i in session.speculations()]
            return _json({"speculations": infos, "summary": asdict(session.speculation_summary())})
        case Speculate(task_id=task_id, agent=agent, assumptions=assumptions):
            stated = cast("list[dict[str, JSON]]", assumptions)  # the same JSON values
            return _json(asdict(await session.speculate(task_id, agent, stated)))
        case AddAssumption(task_id=task_id, assumption=assumption):
            added = await session.add_assumption(task_id, cast("dict[str, JSON]", assumption))
            return {"assumption_id": added}
        case CancelSpeculation(task_id=task_id):
            await session.cancel_speculation(task_id)
            return {"task_id": task_id, "state": "discarded"}


async def answer_action(session: Session | None, data: bytes) -> bytes:
    """The worker's reply to one request on the action subject (never raises for bad input)."""
    try:
        action = _ACTIONS.validate_json(data)
    except ValidationError as exc:
        return _refused("invalid", f"not a session action: {_problems(exc)}")
    if session is None:
        return _refused("not_hosted", "the session is not running on this worker yet")
    try:
        result = await perform(session, action)
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
    return json.dumps({"ok": True, "result": result}).encode()


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
