"""File tools and protected places (.git, .loomkin) and special files (FIFOs, sockets, devices)."""

from __future__ import annotations

import os
import socket
import stat
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ToolError
from loomkin.tools.builtin import (
    BuiltinDeps,
    content_search,
    directory_list,
    file_edit,
    file_read,
    file_search,
    file_write,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loomkin.tools.base import Tool, ToolContext

# A FIFO or device must be refused at once: a hang shows up as this timeout.
pytestmark = pytest.mark.timeout(10)

TOKEN = "web-token-do-not-print-7e7e"


async def call(tool: Tool[BuiltinDeps], ctx: ToolContext, **args: object) -> str:
    return await tool.run(tool.parse_args(dict(args)), ctx, BuiltinDeps())


@pytest.fixture
def protected(project: Path) -> Path:
    (project / ".git" / "hooks").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (project / ".loomkin").mkdir()
    (project / ".loomkin" / "server.json").write_text(f'{{"url": "x", "token": "{TOKEN}"}}\n')
    (project / ".loomkin" / "loomkin.db").write_bytes(b"SQLite format 3\0")
    (project / "sub" / ".git").mkdir(parents=True)
    (project / "sub" / ".git" / "config").write_text("[core]\n")
    return project


@pytest.mark.parametrize(
    "path", [".git/config", ".git/hooks/pre-commit", "sub/.git/config", ".git", ".loomkin/x"]
)
async def test_file_write_refuses_protected_places(
    protected: Path, ctx: ToolContext, path: str
) -> None:
    with pytest.raises(ToolError, match=r"is off limits: \.(git|loomkin)/ holds"):
        await call(file_write, ctx, path=path, content="[core]\n\tfsmonitor = evil\n")
    assert "fsmonitor" not in (protected / ".git" / "config").read_text()


async def test_file_edit_refuses_protected_places(protected: Path, ctx: ToolContext) -> None:
    for path in (".git/config", ".loomkin/loomkin.db"):
        with pytest.raises(ToolError, match=r"is off limits"):
            await call(file_edit, ctx, path=path, old_string="core", new_string="x")


async def test_git_internals_stay_readable(protected: Path, ctx: ToolContext) -> None:
    assert "bare = false" in await call(file_read, ctx, path=".git/config")


async def test_a_symlink_into_git_is_not_a_way_in(protected: Path, ctx: ToolContext) -> None:
    (protected / "cfg").symlink_to(protected / ".git" / "config")
    with pytest.raises(ToolError, match=r"'\.git/config' is off limits"):
        await call(file_write, ctx, path="cfg", content="x")


async def test_server_json_is_never_read(protected: Path, ctx: ToolContext) -> None:
    (protected / "tok").symlink_to(protected / ".loomkin" / "server.json")
    for path in (".loomkin/server.json", "tok", "./.loomkin/../.loomkin/server.json"):
        with pytest.raises(ToolError, match=r"holds a secret \(the web server's token\)"):
            await call(file_read, ctx, path=path)
    with pytest.raises(ToolError, match=r"holds a secret"):
        await call(content_search, ctx, pattern="token", path=".loomkin/server.json")
    for path in (".", ".loomkin"):
        found = await call(content_search, ctx, pattern="token", path=path)
        assert TOKEN not in found
    assert "server.json" not in await call(file_search, ctx, pattern="*.json", path=".loomkin")


async def test_hard_linked_files_are_not_written(project: Path, ctx: ToolContext) -> None:
    (project / "a.txt").write_text("original\n")
    os.link(project / "a.txt", project / "b.txt")
    with pytest.raises(ToolError, match=r"has 1 other hard link"):
        await call(file_write, ctx, path="b.txt", content="changed\n")
    assert (project / "a.txt").read_text() == "original\n"


@pytest.fixture(params=["fifo", "socket", "device"])
def special(request: pytest.FixtureRequest, project: Path) -> Iterator[str]:
    path = project / "special"
    (project / "ok.txt").write_text("needle\n")
    if request.param == "socket":
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            yield "special"
        return
    if request.param == "fifo":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
        except PermissionError:
            pytest.skip("creating a device node needs root")
    yield "special"


async def test_every_file_tool_refuses_special_files(
    project: Path, ctx: ToolContext, special: str
) -> None:
    with pytest.raises(ToolError, match=r"'special' is a (FIFO|socket|character device)"):
        await call(file_read, ctx, path=special)
    with pytest.raises(ToolError, match=r"'special' is a (FIFO|socket|character device)"):
        await call(file_write, ctx, path=special, content="x")
    with pytest.raises(ToolError, match=r"'special' is a (FIFO|socket|character device)"):
        await call(file_edit, ctx, path=special, old_string="a", new_string="b")
    with pytest.raises(ToolError, match=r"not a regular file or directory"):
        await call(content_search, ctx, pattern="needle", path=special)


async def test_searches_and_listings_skip_special_files(
    project: Path, ctx: ToolContext, special: str
) -> None:
    assert await call(content_search, ctx, pattern="needle") == "ok.txt:1:needle"
    assert await call(file_search, ctx, pattern="*") == "ok.txt"
    listing = await call(directory_list, ctx)
    assert "special" not in listing.replace("special files", "")
    assert listing.endswith("[1 special files (FIFOs, sockets, devices) not shown]")


async def test_the_project_configuration_is_not_written(project: Path, ctx: ToolContext) -> None:
    (project / "loomkin.toml").write_text("[permissions]\n")
    with pytest.raises(ToolError, match=r"loomkin.toml holds the permissions"):
        await call(file_write, ctx, path="loomkin.toml", content='auto_approve = ["*"]\n')
    with pytest.raises(ToolError, match=r"loomkin.toml holds the permissions"):
        await call(file_edit, ctx, path="loomkin.toml", old_string="[", new_string="#[")
    assert "[permissions]" in await call(file_read, ctx, path="loomkin.toml")
    await call(file_write, ctx, path="docs/loomkin.toml", content="an example\n")


def test_config_file_name_matches_the_service() -> None:
    from loomkin.service.config import CONFIG_FILE as SERVICE_CONFIG_FILE
    from loomkin.tools.paths import CONFIG_FILE

    assert CONFIG_FILE == SERVICE_CONFIG_FILE
