"""Issue #22: lean tool sets. Requests carry core schemas only; the rest load on demand."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from loomkin.agents.modelcall import build_request
from loomkin.agents.roles import BUILTIN_ROLES, Role, custom_role
from loomkin.agents.tools import CATALOGUE, toolset_for
from loomkin.agents.toolsets import LOAD_TOOLS, MAX_TOOL_SCHEMA_TOKENS, lean_tools
from loomkin.core.chat import AssistantMessage, ToolResultMessage
from loomkin.llm.caching import tool_schema_tokens
from loomkin.llm.schemas import compact_parameters
from loomkin.testing.models import Call, Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin


@pytest.mark.parametrize("role", BUILTIN_ROLES.values(), ids=list(BUILTIN_ROLES))
def test_no_role_sends_more_than_the_schema_budget(role: Role) -> None:
    lean = lean_tools(role, toolset_for(role).schemas())
    assert tool_schema_tokens(lean.schemas) <= MAX_TOOL_SCHEMA_TOKENS
    sent = {s.name for s in lean.schemas}
    # Every tool of the role is reachable: sent whole, or listed and loadable.
    listed = {s.name for s in lean.deferred}
    assert sent | listed == set(role.tools)
    if listed:
        assert LOAD_TOOLS in sent
        assert all(name in lean.prompt_text() for name in listed)


def test_a_custom_role_with_many_tools_is_cut_to_the_budget() -> None:
    role = custom_role("everything", prompt="Do it all.", tools=CATALOGUE.names())
    lean = lean_tools(role, toolset_for(role).schemas())
    assert tool_schema_tokens(lean.schemas) <= MAX_TOOL_SCHEMA_TOKENS
    assert lean.deferred
    assert lean.schemas[-1].name == LOAD_TOOLS


def test_compact_schemas_drop_boilerplate_but_keep_what_the_model_needs() -> None:
    spec = next(s for s in CATALOGUE.schemas() if s.name == "task_create")
    compact = compact_parameters(spec.parameters)
    text = json.dumps(compact)
    assert '"title": "' not in text.replace('"title": {', "")  # no pydantic titles
    assert "null" not in text
    properties = compact["properties"]
    assert isinstance(properties, dict)
    assert set(properties) == set(spec.parameters["properties"])  # type: ignore[arg-type]
    assert properties["milestone"] == {
        "type": "string",
        "description": "Wait only for this named milestone of each predecessor.",
    }
    assert compact["required"] == ["title"]


async def test_a_deferred_tool_is_loaded_then_called(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call(name=LOAD_TOOLS, args={"names": ["knowledge_query"]})]),
            Reply(tool_calls=[Call(name="knowledge_query", args={"search": "x"})]),
            Reply(text="done"),
        ]
    )
    rig = await make_rig(lk, project, model, role="coder")
    first = build_request(rig.agent)
    assert "knowledge_query" not in {t.name for t in first.tools}
    assert "knowledge_query" in first.messages[0].text  # listed in the system prompt
    await rig.send("look it up")
    await rig.wait_for("loop_finished")
    results = [m for m in rig.agent.memory.transcript if isinstance(m, ToolResultMessage)]
    assert results[0].name == LOAD_TOOLS
    assert not results[0].is_error
    assert '"search"' in results[0].content  # the schema the model needs to call it
    assert results[1].name == "knowledge_query"
    assert not results[1].is_error
    # The request's tool list never changed: the prefix stays cacheable.
    requests = model.requests
    assert all(r.tools == first.tools for r in requests)
    assert isinstance(rig.agent.memory.transcript[-1], AssistantMessage)


async def test_load_tools_refuses_a_tool_the_role_does_not_have(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call(name=LOAD_TOOLS, args={"names": ["team_spawn"]})]),
            Reply(text="ok"),
        ]
    )
    rig = await make_rig(lk, project, model, role="researcher")
    await rig.send("try")
    await rig.wait_for("loop_finished")
    result = next(m for m in rig.agent.memory.transcript if isinstance(m, ToolResultMessage))
    assert result.is_error
    assert "no tool named 'team_spawn'" in result.content
