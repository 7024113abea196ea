from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import pytest
from pydantic import Field

from loomkin.errors import ToolError, UserError
from loomkin.ids import AgentId, CallId, SessionId, TeamId
from loomkin.tools.base import (
    FunctionTool,
    MemoryFileAccessLog,
    Tool,
    ToolArgs,
    ToolContext,
    ToolSet,
    ToolSpec,
    tool,
)

if TYPE_CHECKING:
    from pathlib import Path


class EditArgs(ToolArgs):
    path: str = Field(description="File to edit")
    old_string: str
    new_string: str
    replace_all: bool = False


class CountArgs(ToolArgs):
    n: int = Field(ge=0)
    mode: Literal["a", "b"] = "a"


class Greeter(Protocol):
    @property
    def greeting(self) -> str: ...


class Deps:
    greeting = "hello"


def make_ctx(root: Path) -> ToolContext:
    return ToolContext(
        project_root=root,
        agent_id=AgentId("a1"),
        agent_name="coder",
        team_id=TeamId("t1"),
        session_id=SessionId("s1"),
        call_id=CallId("c1"),
    )


@tool(name="file_edit", category="write", args=EditArgs, target=lambda a, ctx: a.path)
async def edit(args: EditArgs, ctx: ToolContext, deps: object) -> str:
    """Edit a file by exact replacement."""
    return f"edited {args.path}"


@tool(name="count", category="read", args=CountArgs, description="Count things.")
async def count(args: CountArgs, ctx: ToolContext, deps: Greeter) -> str:
    return f"{deps.greeting} {args.n} {args.mode}"


def test_decorator_builds_tool_with_docstring_description() -> None:
    assert isinstance(edit, FunctionTool)
    assert edit.name == "file_edit"
    assert edit.category == "write"
    assert edit.description == "Edit a file by exact replacement."
    assert count.description == "Count things."


def test_schema_is_json_schema_of_args() -> None:
    schema = edit.schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["path", "old_string", "new_string"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert isinstance(props, dict)
    path_schema = props["path"]
    assert isinstance(path_schema, dict)
    assert path_schema["description"] == "File to edit"
    assert "title" not in schema


def test_schema_copy_cannot_change_the_tool() -> None:
    schema = edit.schema()
    schema["type"] = "broken"
    assert edit.schema()["type"] == "object"


def test_missing_description_is_refused() -> None:
    async def nodoc(args: CountArgs, ctx: ToolContext, deps: object) -> str:
        return ""

    with pytest.raises(UserError, match="needs a description"):
        FunctionTool(name="x", category="read", args=CountArgs, func=nodoc)


def test_parse_args_valid_text_and_mapping() -> None:
    args = edit.parse_args('{"path": "a.py", "old_string": "x", "new_string": "y"}')
    assert args == EditArgs(path="a.py", old_string="x", new_string="y")
    assert count.parse_args({"n": 3}) == CountArgs(n=3)


def test_parse_args_empty_text_means_no_arguments() -> None:
    with pytest.raises(ToolError, match="field 'n' is required"):
        count.parse_args("")


def test_parse_args_missing_field_is_named() -> None:
    with pytest.raises(
        ToolError, match=r"^Invalid arguments for file_edit: field 'old_string' is required"
    ):
        edit.parse_args('{"path": "a.py", "new_string": "y"}')


def test_parse_args_reports_every_problem() -> None:
    with pytest.raises(ToolError) as info:
        edit.parse_args("{}")
    message = str(info.value)
    for name in ("path", "old_string", "new_string"):
        assert f"field {name!r} is required" in message


def test_parse_args_unknown_field_is_refused() -> None:
    with pytest.raises(ToolError, match="unknown field 'file_path'"):
        edit.parse_args('{"file_path": "a", "path": "a", "old_string": "x", "new_string": "y"}')


def test_parse_args_invalid_json() -> None:
    with pytest.raises(ToolError, match=r"file_edit: not valid JSON \(.* line 1 column"):
        edit.parse_args('{"path": ')


@pytest.mark.parametrize(
    ("raw", "what"),
    [("[1, 2]", "an array"), ('"x"', "a string"), ("3", "a number"), ("null", "null")],
)
def test_parse_args_non_object_json(raw: str, what: str) -> None:
    with pytest.raises(ToolError, match=f"expected a JSON object, got {what}"):
        edit.parse_args(raw)


def test_parse_args_schema_violation_names_field_and_value() -> None:
    with pytest.raises(ToolError, match=r"field 'n': Input should be greater than or equal to 0"):
        count.parse_args('{"n": -1}')
    with pytest.raises(ToolError, match=r"field 'mode': Input should be 'a' or 'b' \(got \"c\"\)"):
        count.parse_args('{"n": 1, "mode": "c"}')
    with pytest.raises(ToolError, match=r"field 'n': .*valid integer"):
        count.parse_args('{"n": "many"}')


def test_parse_args_long_value_is_shortened() -> None:
    with pytest.raises(ToolError) as info:
        count.parse_args('{"n": "' + "x" * 500 + '"}')
    assert len(str(info.value)) < 200


async def test_run_and_target(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    args = count.parse_args('{"n": 2, "mode": "b"}')
    assert await count.run(args, ctx, Deps()) == "hello 2 b"
    assert count.target(args, ctx) == ""
    eargs = edit.parse_args({"path": "f.py", "old_string": "a", "new_string": "b"})
    assert edit.target(eargs, ctx) == "f.py"


async def test_run_with_wrong_args_type_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="expected CountArgs"):
        await count.run(
            EditArgs(path="a", old_string="b", new_string="c"), make_ctx(tmp_path), Deps()
        )


def test_function_tool_satisfies_protocol() -> None:
    as_tool: Tool[Deps] = count
    assert as_tool.name == "count"
    assert edit.spec() == ToolSpec(
        name="file_edit", description=edit.description, parameters=edit.schema()
    )


def test_toolset_order_get_and_schemas() -> None:
    tools: ToolSet[Deps] = ToolSet([edit, count])
    assert tools.names() == ("file_edit", "count")
    assert len(tools) == 2
    assert "count" in tools
    assert tools.get("count") is count
    assert [s.name for s in tools.schemas()] == ["file_edit", "count"]
    assert tools.schemas()[1].parameters == count.schema()
    assert [t.name for t in tools] == ["file_edit", "count"]


def test_toolset_unknown_name_lists_available() -> None:
    tools: ToolSet[Deps] = ToolSet([edit, count])
    with pytest.raises(
        ToolError, match=r"^Unknown tool 'nope'. Available tools: file_edit, count$"
    ):
        tools.get("nope")
    with pytest.raises(ToolError, match=r"Available tools: \(none\)"):
        ToolSet[Deps]().get("x")


def test_toolset_duplicate_names_refused() -> None:
    with pytest.raises(UserError, match="Duplicate tool name 'count'"):
        ToolSet([count, count])


def test_toolset_subset_and_union() -> None:
    tools: ToolSet[Deps] = ToolSet([edit, count])
    assert tools.subset(["count"]).names() == ("count",)
    assert tools.subset(["count", "file_edit"]).names() == ("file_edit", "count")
    with pytest.raises(UserError, match="Unknown tool"):
        tools.subset(["zzz"])
    merged = ToolSet[Deps]([count]).union(ToolSet([edit, count]))
    assert merged.names() == ("count", "file_edit")


def test_memory_file_access_log(tmp_path: Path) -> None:
    log = MemoryFileAccessLog()
    path = tmp_path / "a"
    assert log.last_read(AgentId("a"), path) is None
    log.note_read(AgentId("a"), path, 5)
    log.note_read(AgentId("a"), path, 7)
    assert log.last_read(AgentId("a"), path) == 7
    assert log.last_read(AgentId("b"), path) is None
