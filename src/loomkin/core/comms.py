"""Who may talk to whom (SPEC §3.5): the communication policy as a pure function.

By default a team talks to its parent, its children and its siblings (its neighbours in the
team tree); ``open`` lets every team talk to every other; pairs of team names in ``allow``
may always talk, in either direction. The check is O(1) whatever the number of teams: it
compares the two teams' parents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Collection

    from loomkin.core.state import State

__all__ = ["CommsPolicyName", "comms_refusal"]

CommsPolicyName = Literal["neighbours", "open"]


def comms_refusal(
    state: State,
    from_team: str,
    to_team: str,
    *,
    policy: CommsPolicyName,
    allow: Collection[tuple[str, str]] = (),
) -> str | None:
    """Why ``from_team`` may not message ``to_team``, or ``None`` when it may."""
    if from_team == to_team or policy == "open":
        return None
    source, target = state.team(from_team), state.team(to_team)
    parent = source.parent_team_id
    if target.status == "active" and (
        to_team == parent
        or target.parent_team_id == from_team
        or (parent is not None and target.parent_team_id == parent)
    ):
        return None
    names = (source.name, target.name)
    if names in allow or names[::-1] in allow:
        return None
    return (
        f"team {names[0]!r} may not message team {names[1]!r}: the communication policy "
        "allows the team's parent, children and siblings (add the pair to [comms] allow "
        "in loomkin.toml)"
    )
