"""The terminal's progress lines, one event at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pytest

from loomkin.cli.progress import describe
from loomkin.core.events import DecisionLogged
from loomkin.ids import DecisionId, SessionId, TeamId

if TYPE_CHECKING:
    from loomkin.service import AgentInfo, Names


class _Session:
    """A session as a progress line sees it (a decision line names no agent)."""

    project_root = "/p"

    def names(self) -> Names:
        raise AssertionError("a decision line needs no names")

    def agents(self) -> list[AgentInfo]:
        raise AssertionError("a decision line needs no agents")


@pytest.mark.parametrize(
    ("node_type", "line"),
    [
        ("decision", "[green]decision[/] Tests start at the milestone"),
        ("option", "[green]decision[/] option: Tests start at the milestone"),
    ],
)
def test_a_decision_line_names_its_kind_once(
    node_type: Literal["decision", "option"], line: str
) -> None:
    event = DecisionLogged(
        session_id=SessionId("s1"),
        decision_id=DecisionId("d1"),
        team_id=TeamId("t1"),
        node_type=node_type,
        title="Tests start at the milestone",
    )
    assert describe(event, _Session()) == line
