"""Stored sessions read without opening them, and the newest end of a session's log.

How this works and why:

* The shared projections (the :class:`~loomkin.core.state.State` of sessions, teams and
  agents, and the task board) hold every session of the store, open here or not. A finished
  session, or one another process runs, is therefore shown read-only from them: its agents
  (their last status and usage), teams, tasks and dependencies, as the same records an open
  session hands out. Nothing here needs the session's own runtime.
* A page on a long session must not read its log from position 0. The store reads forward
  only (``position > after``, at most ``limit`` rows), and positions are global (sessions
  interleave), so :func:`read_before` looks backwards through windows that double: a window
  ``(before - width, before)`` holds at most ``width - 1`` positions, so reading ``width``
  session rows after its start returns all of that session's rows in it. A few reads of at
  most ``width`` rows each find the newest ``limit`` rows before ``before``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.service.records import AgentInfo, DependencyInfo, TeamInfo

if TYPE_CHECKING:
    from loomkin.core.events import RecordedEvent
    from loomkin.core.state import State
    from loomkin.core.store import EventStore
    from loomkin.core.tasks import TaskBoard

__all__ = ["read_before", "stored_agents", "stored_dependencies", "stored_teams"]

_FIRST_WINDOW = 256
"""Width of the first backwards window (positions); it doubles until enough rows are found."""


async def read_before(
    store: EventStore,
    session_id: str,
    *,
    before: int,
    limit: int,
    kinds: frozenset[str] | None = None,
    scan: int | None = None,
) -> list[RecordedEvent]:
    """The newest ``limit`` events of ``session_id`` with position < ``before``, oldest first.

    ``kinds``: only events of these kinds. ``scan``: look at most this many positions back
    (a search for rare kinds then stays cheap; the caller continues from ``before - scan``).
    """
    if limit < 1 or before <= 1:
        return []
    width = max(_FIRST_WINDOW, limit * 2)
    if scan is not None:
        width = min(width, scan)
    while True:
        start = max(0, before - width)
        found = await store.read(start, limit=min(width, before), session_id=session_id)
        rows = [
            r for r in found if r.position < before and (kinds is None or r.event.kind in kinds)
        ]
        if len(rows) >= limit or start == 0 or (scan is not None and width >= scan):
            return rows[-limit:]
        width = width * 2 if scan is None else min(width * 2, scan)


def stored_agents(state: State, session_id: str) -> list[AgentInfo]:
    """Every agent of a stored session as the log last left it, in spawn order."""
    out: list[AgentInfo] = []
    for view in state.agents(session_id):
        team = state.get_team(view.team_id)
        out.append(
            AgentInfo(
                agent_id=view.agent_id,
                name=view.name,
                role=view.role,
                team_id=view.team_id,
                team_name=team.name if team else "",
                status=view.status,
                task_id=view.current_task_id,
                current_tool=None,
                input_tokens=view.input_tokens,
                output_tokens=view.output_tokens,
                cost_usd=view.cost_usd,
                status_reason=view.status_reason,
                worker=view.worker,
            )
        )
    return out


def stored_teams(state: State, session_id: str) -> list[TeamInfo]:
    """The teams of a stored session (dissolved ones included), in creation order."""
    return [
        TeamInfo(
            team_id=t.team_id,
            name=t.name,
            parent_team_id=t.parent_team_id,
            depth=t.depth,
            status=t.status,
            purpose=t.purpose,
            agent_ids=tuple(t.agent_ids),
            child_ids=tuple(t.child_ids),
        )
        for t in state.teams(session_id)
    ]


def stored_dependencies(board: TaskBoard, session_id: str) -> list[DependencyInfo]:
    """The dependencies between the tasks of a stored session."""
    return [
        DependencyInfo(
            task_id=d.task_id, depends_on=d.depends_on, kind=d.kind, milestone=d.milestone
        )
        for v in board.tasks()
        if v.session_id == session_id
        for d in board.dependencies(v.task_id)
    ]
