"""Raising (or lowering) a session's budgets from the CLI, the web app or Python.

A change is journaled (``BudgetsChanged``, with who made it) and only the limits named change;
then, with ``resume``, every agent that a budget breach paused and that the new limits let
work again is resumed through its control lane, as a user's resume would be.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import BudgetsChanged
from loomkin.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.agents.budgets import Budgets
    from loomkin.agents.session import SessionRuntime
    from loomkin.runtime.eventlog import EventLog

__all__ = ["BUDGET_KEYS", "BudgetUpdate", "check_budget_changes", "update_budgets"]

BUDGET_KEYS: tuple[str, ...] = (
    "session_usd",
    "team_usd",
    "agent_usd",
    "session_tokens",
    "team_tokens",
    "agent_tokens",
)
"""The limits a change may name (``None`` removes the limit)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetUpdate:
    """What a budget change did."""

    limits: dict[str, float | int | None]
    """Every limit after the change."""
    resumed: tuple[str, ...]
    """Names of the agents resumed because the new limits let them work again."""
    still_paused: tuple[str, ...]
    """Names of agents a budget paused that the new limits still stop."""


def check_budget_changes(changes: Mapping[str, object]) -> dict[str, float | int | None]:
    """Validate ``changes`` (limit name → non-negative number, or None for no limit).

    Raises:
        UserError: an unknown limit, a value that is not a non-negative number, a token
            limit that is not a whole number, or no change at all.
    """
    if not changes:
        raise UserError(f"name at least one budget to change: {', '.join(BUDGET_KEYS)}")
    checked: dict[str, float | int | None] = {}
    for key, value in changes.items():
        if key not in BUDGET_KEYS:
            raise UserError(f"unknown budget {key!r}; budgets are {', '.join(BUDGET_KEYS)}")
        if value is None:
            checked[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise UserError(f"budget {key} must be a number or null, not {value!r}")
        if value < 0:
            raise UserError(f"budget {key} cannot be negative ({value})")
        if key.endswith("_tokens"):
            if value != int(value):
                raise UserError(f"budget {key} must be a whole number of tokens, not {value}")
            checked[key] = int(value)
        else:
            checked[key] = float(value)
    return checked


async def update_budgets(
    runtime: SessionRuntime,
    log: EventLog,
    changes: Mapping[str, object],
    *,
    by: str = "user",
    resume: bool = True,
) -> BudgetUpdate:
    """Change the named limits (journaled), then resume the agents they free (see above)."""
    checked = check_budget_changes(changes)
    book = runtime.budgets
    limits: Budgets = dataclasses.replace(book.limits, **checked)  # type: ignore[arg-type]
    await log.append(
        BudgetsChanged(
            session_id=runtime.session_id,
            session_usd=limits.session_usd,
            team_usd=limits.team_usd,
            agent_usd=limits.agent_usd,
            session_tokens=limits.session_tokens,
            team_tokens=limits.team_tokens,
            agent_tokens=limits.agent_tokens,
            changed_by=by,
        )
    )
    resumed: list[str] = []
    still: list[str] = []
    for agent_id in sorted(book.budget_paused):
        agent = runtime.directory.agent(agent_id)
        if agent.memory.status != "paused":
            continue
        if book.breach(agent_id) is not None:
            still.append(agent.name)
        elif resume:
            await runtime.control(agent, "resume", requested_by=by)
            resumed.append(agent.name)
    return BudgetUpdate(
        limits={key: getattr(limits, key) for key in BUDGET_KEYS},
        resumed=tuple(resumed),
        still_paused=tuple(still),
    )
