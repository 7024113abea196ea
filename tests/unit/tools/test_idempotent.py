"""Tools say whether a call may be run again after a crash cut it off (issue #15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents.tools import CATALOGUE
from loomkin.tools.base import ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.core.events import JSON


class NoteArgs(ToolArgs):
    """Arguments of the test tools."""

    text: str = ""


async def _note(args: NoteArgs, ctx: ToolContext, deps: object) -> str:
    return args.text


def test_a_tool_is_not_idempotent_unless_it_says_so() -> None:
    plain = tool(name="plain", category="write", args=NoteArgs, description="x")(_note)
    assert plain.idempotent(NoteArgs()) is False
    always = tool(name="always", category="read", args=NoteArgs, description="x", idempotent=True)(
        _note
    )
    assert always.idempotent(NoteArgs()) is True
    per_call = tool(
        name="per_call",
        category="write",
        args=NoteArgs,
        description="x",
        idempotent=lambda args: args.text == "same",
    )(_note)
    assert per_call.idempotent(NoteArgs(text="same")) is True
    assert per_call.idempotent(NoteArgs(text="other")) is False


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("file_read", {"path": "a.py"}, True),
        ("file_search", {"pattern": "*.py"}, True),
        ("content_search", {"pattern": "def"}, True),
        ("directory_list", {"path": "."}, True),
        ("file_write", {"path": "a.py", "content": "x = 1\n"}, True),  # whole content
        ("file_edit", {"path": "a.py", "old_string": "1", "new_string": "2"}, False),
        ("shell", {"command": "echo hi >> log.txt"}, False),
        ("git", {"operation": "status"}, True),
        ("git", {"operation": "log", "args": ["-3"]}, True),
        ("git", {"operation": "diff"}, True),
        ("git", {"operation": "add", "args": ["a.py"]}, False),
        ("git", {"operation": "commit", "args": ["-m", "x"]}, False),
        ("task_list", {}, True),
        ("task_read", {"task_id": "t"}, True),
        ("list_teams", {}, True),
        ("task_complete", {"result": "done"}, False),
        ("peer_message", {"to": "bob", "content": "hi"}, False),
    ],
)
def test_reads_listings_whole_writes_and_read_only_git_are_idempotent(
    name: str, arguments: dict[str, JSON], expected: bool
) -> None:
    found = CATALOGUE.get(name)
    assert found.idempotent(found.parse_args(arguments)) is expected
