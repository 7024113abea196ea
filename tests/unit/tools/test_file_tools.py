from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ToolError
from loomkin.ids import AgentId
from loomkin.tools.builtin import BuiltinDeps, file_edit, file_read, file_write
from loomkin.tools.builtin.files import MAX_READ_LINES

from .conftest import make_ctx

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.tools.base import ToolContext


async def read(ctx: ToolContext, deps: BuiltinDeps, raw: str) -> str:
    return await file_read.run(file_read.parse_args(raw), ctx, deps)


async def write(ctx: ToolContext, deps: BuiltinDeps, path: str, content: str) -> str:
    args = file_write.parse_args({"path": path, "content": content})
    return await file_write.run(args, ctx, deps)


async def edit(ctx: ToolContext, deps: BuiltinDeps, **kw: str | bool) -> str:
    return await file_edit.run(file_edit.parse_args(dict(kw)), ctx, deps)


async def test_read_numbers_lines_and_records_read(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    (project / "a.txt").write_text("one\ntwo\nthree\n")
    result = await read(ctx, deps, '{"path": "a.txt"}')
    assert result == "     1\tone\n     2\ttwo\n     3\tthree"
    path = (project / "a.txt").resolve()
    assert deps.file_access.last_read(AgentId("a1"), path) == path.stat().st_mtime_ns


async def test_read_offset_and_limit(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    result = await read(ctx, deps, '{"path": "a.txt", "offset": 4, "limit": 2}')
    assert result.splitlines() == [
        "     4\tline 4",
        "     5\tline 5",
        "[truncated: showing lines 4-5 of 10; call file_read with offset=6 to read more]",
    ]


async def test_read_caps_lines(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "big.txt").write_text("x\n" * (MAX_READ_LINES + 50))
    result = await read(ctx, deps, '{"path": "big.txt"}')
    lines = result.splitlines()
    assert len(lines) == MAX_READ_LINES + 1
    assert lines[-1].startswith(f"[truncated: showing lines 1-{MAX_READ_LINES} of 2050")


async def test_read_caps_bytes(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "wide.txt").write_text(("y" * 1000 + "\n") * 500)
    result = await read(ctx, deps, '{"path": "wide.txt"}')
    assert len(result) < 110_000
    assert "[truncated: showing lines 1-" in result
    assert "offset=" in result


async def test_read_cuts_very_long_lines(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    (project / "min.js").write_text("z" * 5000)
    result = await read(ctx, deps, '{"path": "min.js"}')
    assert result.endswith("[line cut]")
    assert len(result) < 2100


async def test_read_refuses_binary(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(ToolError, match=r"'img.png' looks binary .*only shows text"):
        await read(ctx, deps, '{"path": "img.png"}')
    (project / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 3)
    with pytest.raises(ToolError, match=r"looks binary"):
        await read(ctx, deps, '{"path": "latin1.txt"}')


async def test_read_utf8_is_text(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "u.txt").write_text("héllo → wörld\n", encoding="utf-8")
    assert await read(ctx, deps, '{"path": "u.txt"}') == "     1\théllo → wörld"


async def test_read_errors(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "d").mkdir()
    (project / "e.txt").write_text("")
    (project / "s.txt").write_text("a\nb\n")
    with pytest.raises(ToolError, match=r"File 'nope.txt' does not exist"):
        await read(ctx, deps, '{"path": "nope.txt"}')
    with pytest.raises(ToolError, match=r"'d' is a directory; use directory_list"):
        await read(ctx, deps, '{"path": "d"}')
    assert await read(ctx, deps, '{"path": "e.txt"}') == "(file 'e.txt' is empty)"
    with pytest.raises(ToolError, match=r"offset 9 is past the end of 's.txt', which has 2 lines"):
        await read(ctx, deps, '{"path": "s.txt", "offset": 9}')
    with pytest.raises(ToolError, match=r"field 'offset'"):
        await read(ctx, deps, '{"path": "s.txt", "offset": 0}')


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x"])
async def test_file_tools_refuse_escapes(
    project: Path, ctx: ToolContext, deps: BuiltinDeps, bad: str
) -> None:
    with pytest.raises(ToolError, match=r"outside the project root|leads out"):
        await read(ctx, deps, f'{{"path": "{bad}"}}')
    with pytest.raises(ToolError, match=r"outside the project root|leads out"):
        await write(ctx, deps, bad, "x")
    with pytest.raises(ToolError, match=r"outside the project root|leads out"):
        await edit(ctx, deps, path=bad, old_string="a", new_string="b")


async def test_file_tools_refuse_symlink_escape(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    outside = project.parent / "secret.txt"
    outside.write_text("secret\n")
    (project / "link.txt").symlink_to(outside)
    with pytest.raises(ToolError, match=r"symlink"):
        await read(ctx, deps, '{"path": "link.txt"}')
    with pytest.raises(ToolError, match=r"symlink"):
        await write(ctx, deps, "link.txt", "pwned")
    assert outside.read_text() == "secret\n"


def test_target_is_the_resolved_path(project: Path, ctx: ToolContext) -> None:
    args = file_write.parse_args({"path": "src/x.py", "content": ""})
    assert file_write.target(args, ctx) == str(project.resolve() / "src" / "x.py")
    bad = file_write.parse_args({"path": "../x", "content": ""})
    assert file_write.target(bad, ctx) == "../x"


async def test_write_creates_parents_without_warning(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    result = await write(ctx, deps, "src/pkg/new.py", "print('hi')\n")
    assert result == "Created 'src/pkg/new.py' (12 bytes, 1 lines)"
    assert (project / "src" / "pkg" / "new.py").read_text() == "print('hi')\n"
    # After writing, the agent knows the content: a second write does not warn.
    again = await write(ctx, deps, "src/pkg/new.py", "x\n")
    assert again == "Overwrote 'src/pkg/new.py' (2 bytes, 1 lines)"


async def test_write_unread_existing_file_warns(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    (project / "a.txt").write_text("old\n")
    result = await write(ctx, deps, "a.txt", "new\n")
    assert result.startswith("Warning: you changed 'a.txt' without reading it first")
    assert result.endswith("Overwrote 'a.txt' (4 bytes, 1 lines)")
    assert (project / "a.txt").read_text() == "new\n"


async def test_write_keeps_exact_content(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    await write(ctx, deps, "crlf.txt", "a\r\nb\r\n")
    assert (project / "crlf.txt").read_bytes() == b"a\r\nb\r\n"


async def test_write_to_directory_is_refused(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    (project / "d").mkdir()
    with pytest.raises(ToolError, match=r"'d' is a directory"):
        await write(ctx, deps, "d", "x")


async def test_edit_replaces_unique_occurrence(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    (project / "m.py").write_text("def f():\n    return 1\n")
    await read(ctx, deps, '{"path": "m.py"}')
    result = await edit(ctx, deps, path="m.py", old_string="return 1", new_string="return 2")
    assert result == "Edited 'm.py': replaced 1 occurrence"
    assert (project / "m.py").read_text() == "def f():\n    return 2\n"


async def test_edit_not_found(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "m.py").write_text("a = 1\n")
    with pytest.raises(ToolError, match=r"old_string was not found in 'm.py'"):
        await edit(ctx, deps, path="m.py", old_string="b = 1", new_string="c")


async def test_edit_ambiguous_names_count(
    project: Path, ctx: ToolContext, deps: BuiltinDeps
) -> None:
    (project / "m.py").write_text("x = 1\nx = 1\nx = 1\n")
    with pytest.raises(ToolError, match=r"old_string occurs 3 times in 'm.py'.*replace_all"):
        await edit(ctx, deps, path="m.py", old_string="x = 1", new_string="y = 2")
    assert (project / "m.py").read_text() == "x = 1\nx = 1\nx = 1\n"
    result = await edit(
        ctx, deps, path="m.py", old_string="x = 1", new_string="y = 2", replace_all=True
    )
    assert result.endswith("Edited 'm.py': replaced 3 occurrences")
    assert (project / "m.py").read_text() == "y = 2\ny = 2\ny = 2\n"


async def test_edit_argument_errors(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "m.py").write_text("a\n")
    with pytest.raises(ToolError, match=r"identical"):
        await edit(ctx, deps, path="m.py", old_string="a", new_string="a")
    with pytest.raises(ToolError, match=r"field 'old_string'"):
        file_edit.parse_args({"path": "m.py", "old_string": "", "new_string": "b"})
    with pytest.raises(ToolError, match=r"field 'old_string' is required"):
        file_edit.parse_args('{"path": "m.py", "new_string": "b"}')
    with pytest.raises(ToolError, match=r"does not exist"):
        await edit(ctx, deps, path="nope.py", old_string="a", new_string="b")


async def test_edit_unread_file_warns(project: Path, ctx: ToolContext, deps: BuiltinDeps) -> None:
    (project / "m.py").write_text("a\n")
    result = await edit(ctx, deps, path="m.py", old_string="a", new_string="b")
    assert result.startswith("Warning: you changed 'm.py' without reading it first")


async def test_edit_after_another_agent_changed_the_file_warns(
    project: Path, deps: BuiltinDeps
) -> None:
    (project / "m.py").write_text("a\n")
    me, other = make_ctx(project, "me"), make_ctx(project, "other")
    await read(me, deps, '{"path": "m.py"}')
    await read(other, deps, '{"path": "m.py"}')
    await edit(other, deps, path="m.py", old_string="a", new_string="b")
    path = project / "m.py"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    result = await edit(me, deps, path="m.py", old_string="b", new_string="c")
    assert result.startswith("Warning: 'm.py' changed on disk since you last read it")
    assert path.read_text() == "c\n"
