"""MCP tools without a server: schemas and arguments, results as text, permission entries."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from loomkin.errors import ConfigError, ToolError
from loomkin.tools.mcp import McpServerSpec, McpTool, StdioTransport
from loomkin.tools.mcp.results import render_result
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON


class Recorder:
    """Stands in for a server connection: records calls, answers with their arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, JSON]]] = []

    async def call(self, tool: str, arguments: dict[str, JSON]) -> str:
        self.calls.append((tool, arguments))
        return json.dumps(arguments)


SCHEMA: dict[str, JSON] = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "depth": {"type": "integer", "minimum": 1},
        "options": {"type": "object", "properties": {"all": {"type": "boolean"}}},
    },
    "required": ["path"],
}


def make_tool(recorder: Recorder | None = None) -> McpTool:
    return McpTool(
        server="files",
        name="list",
        description="List a directory.",
        schema=SCHEMA,
        caller=recorder or Recorder(),
    )


async def test_an_mcp_tool_is_named_after_its_server_and_runs_through_it() -> None:
    recorder = Recorder()
    tool = make_tool(recorder)
    assert (tool.name, tool.remote_name, tool.category) == ("files.list", "list", "execute")
    assert tool.description == "List a directory. (MCP server 'files')"
    assert tool.schema() == SCHEMA
    tool.schema()["required"] = []  # a copy: the tool's own schema does not change
    assert tool.schema()["required"] == ["path"]
    args = tool.parse_args('{"path": "src", "options": {"all": true}}')
    assert args.model_dump(mode="json") == {"path": "src", "options": {"all": True}}
    assert tool.target(args, None) == ""  # type: ignore[arg-type]  # unused by MCP tools
    out = await tool.run(args, None, None)  # type: ignore[arg-type]  # unused by MCP tools
    assert recorder.calls == [("list", {"path": "src", "options": {"all": True}})]
    assert json.loads(out) == {"path": "src", "options": {"all": True}}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{}", "'path' is a required property"),
        ('{"path": 3}', "field 'path': 3 is not of type 'string'"),
        ('{"path": "a", "depth": 0}', "field 'depth': 0 is less than the minimum of 1"),
        ('{"path": "a", "options": {"all": "yes"}}', "field 'options.all': 'yes' is not of type"),
        ("[1]", "expected a JSON object"),
        ("{path", "not valid JSON"),
    ],
)
def test_arguments_are_checked_against_the_servers_schema(raw: str, problem: str) -> None:
    with pytest.raises(ToolError, match=r"Invalid arguments for files\.list") as refused:
        make_tool().parse_args(raw)
    assert problem in str(refused.value)


def test_empty_arguments_are_an_empty_object() -> None:
    tool = McpTool(
        server="s", name="ping", description="", schema={"type": "object"}, caller=Recorder()
    )
    assert tool.parse_args("").model_dump() == {}
    assert tool.description == "ping (MCP server 's')"


def _png() -> str:
    return base64.b64encode(b"\x89PNG" + b"\0" * 96).decode()


def test_results_become_text_the_model_can_read() -> None:
    result = CallToolResult(
        content=[
            TextContent(text="two files"),
            ImageContent(data=_png(), mime_type="image/png"),
            ResourceLink(uri="file:///a.txt", name="a.txt", mime_type="text/plain"),
            EmbeddedResource(resource=TextResourceContents(uri="file:///b.txt", text="bee")),
            EmbeddedResource(
                resource=BlobResourceContents(
                    uri="file:///c.bin", blob=_png(), mime_type="application/octet-stream"
                )
            ),
        ],
        structured_content={"count": 2},
    )
    text, is_error = render_result(result)
    assert not is_error
    assert text.splitlines() == [
        "two files",
        "[image: image/png, 100 bytes; not shown to you]",
        "[resource link: a.txt <file:///a.txt> (text/plain)]",
        "[resource file:///b.txt]",
        "bee",
        "[resource file:///c.bin: application/octet-stream, 100 bytes; not shown]",
    ]  # the structured content is carried by the text blocks: not repeated


def test_structured_content_alone_is_shown_as_json() -> None:
    text, _ = render_result(CallToolResult(content=[], structured_content={"b": 1, "a": [2]}))
    assert text == '{"a": [2], "b": 1}'


def test_errors_and_empty_results() -> None:
    assert render_result(CallToolResult(content=[TextContent(text="boom")], is_error=True)) == (
        "boom",
        True,
    )
    assert render_result(CallToolResult(content=[], is_error=True)) == (
        "(the tool failed and said nothing)",
        True,
    )
    assert render_result(CallToolResult(content=[])) == ("(no output)", False)


def test_long_results_keep_head_and_tail() -> None:
    text, _ = render_result(
        CallToolResult(content=[TextContent(text="a" * 500 + "z" * 500)]), cap=100
    )
    assert text.startswith("a" * 50)
    assert text.endswith("z" * 50)
    assert "[... 900 characters cut ...]" in text


def test_mcp_permission_entries_cover_a_server_or_one_tool() -> None:
    policy = PermissionPolicy(auto_approve=frozenset({"mcp:git"}), deny=frozenset({"mcp:db.drop"}))
    assert policy.decide("git.status", "execute", "") == "allow"
    assert policy.decide("git.commit", "execute", "") == "allow"
    assert policy.decide("db.drop", "execute", "") == "deny"
    assert policy.decide("db.query", "execute", "") == "ask"  # MCP tools ask by default
    assert policy.decide("gitx.status", "execute", "") == "ask"  # another server
    assert policy.decide("shell", "execute", "") == "ask"
    grant = policy.grant_always("db.query", "")
    assert policy.decide("db.query", "execute", "") == "allow"
    assert grant.target == "*"  # "allow always" covers the tool, whatever its arguments


def test_a_server_name_must_be_usable_as_a_tool_prefix() -> None:
    with pytest.raises(ConfigError, match=r"MCP server name 'My\.Server' must be lower-case"):
        McpServerSpec(name="My.Server", transport=StdioTransport(command="x"))
