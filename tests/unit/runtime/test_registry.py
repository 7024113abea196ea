from __future__ import annotations

import pytest

from loomkin.errors import NotFound, UserError
from loomkin.ids import AgentId, TeamId
from loomkin.runtime import Registry

A1, A2, A3 = AgentId("a1"), AgentId("a2"), AgentId("a3")
T, U = TeamId("t"), TeamId("u")


def test_lookups_by_id_name_and_team() -> None:
    reg: Registry[str] = Registry()
    reg.register(A1, T, "coder", "h1")
    reg.register(A2, T, "lead", "h2")
    reg.register(A3, U, "coder", "h3")
    assert reg.by_id(A1) == "h1"
    assert reg.by_name(T, "lead") == "h2"
    assert reg.by_name(U, "coder") == "h3"
    assert reg.in_team(T) == ["h1", "h2"]
    assert reg.team_of(A3) == U
    assert A1 in reg
    assert len(reg) == 3


def test_missing_agents_raise_clear_not_found_or_return_none() -> None:
    reg: Registry[str] = Registry()
    reg.register(A1, T, "coder", "h1")
    with pytest.raises(NotFound, match="agent 'x' not found in team 't'"):
        reg.by_name(T, "x")
    with pytest.raises(NotFound, match="agent 'zz' not found"):
        reg.by_id(AgentId("zz"))
    assert reg.get_by_name(T, "x") is None
    assert reg.get_by_name(TeamId("nope"), "coder") is None
    assert reg.get_by_id(AgentId("zz")) is None
    assert reg.in_team(U) == []


def test_duplicates_are_refused_and_unregister_frees_the_name() -> None:
    reg: Registry[str] = Registry()
    reg.register(A1, T, "coder", "h1")
    with pytest.raises(UserError, match="already registered"):
        reg.register(A1, U, "other", "h")
    with pytest.raises(UserError, match="'coder' is already taken in team 't'"):
        reg.register(A2, T, "coder", "h2")
    assert reg.unregister(A1) == "h1"
    with pytest.raises(NotFound):
        reg.unregister(A1)
    reg.register(A2, T, "coder", "h2")
    assert reg.by_name(T, "coder") == "h2"
