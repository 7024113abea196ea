from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ToolError
from loomkin.tools.builtin import BuiltinDeps, content_search, directory_list, file_search
from loomkin.tools.builtin._fs import glob_to_regex
from loomkin.tools.builtin.search import MAX_CONTENT_MATCHES, MAX_SEARCH_RESULTS

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.tools.base import ToolContext


@pytest.fixture
def tree(project: Path) -> Path:
    files = {
        "README.md": "# Demo\nTODO: write docs\n",
        "src/app.py": "def main():\n    return 'TODO'\n",
        "src/util/helpers.py": "VALUE = 42\n",
        "src/util/data.json": '{"todo": true}\n',
        "tests/test_app.py": "def test_main():\n    assert True\n",
        ".git/config": "TODO in git\n",
        ".venv/lib/x.py": "TODO venv\n",
        "node_modules/m/index.py": "TODO\n",
        "src/__pycache__/app.cpython.py": "TODO\n",
        ".loomkin/state.py": "TODO\n",
    }
    for rel, text in files.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (project / "bin.dat").write_bytes(b"TODO\0\0binary")
    return project


async def search(ctx: ToolContext, raw: str) -> str:
    return await file_search.run(file_search.parse_args(raw), ctx, BuiltinDeps())


async def grep(ctx: ToolContext, raw: str) -> str:
    return await content_search.run(content_search.parse_args(raw), ctx, BuiltinDeps())


async def ls(ctx: ToolContext, raw: str = "{}") -> str:
    return await directory_list.run(directory_list.parse_args(raw), ctx, BuiltinDeps())


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("*.py", "a.py", True),
        ("*.py", "src/deep/a.py", True),
        ("*.py", "a.pyc", False),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/x/a.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/x/y/a.py", True),
        ("test_?.py", "t/test_1.py", True),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "b.txt", False),
        ("a+b.txt", "a+b.txt", True),
    ],
)
def test_glob_to_regex(glob: str, path: str, hit: bool) -> None:
    assert bool(glob_to_regex(glob).match(path)) is hit


async def test_file_search_sorted_and_skips_dirs(tree: Path, ctx: ToolContext) -> None:
    result = await search(ctx, '{"pattern": "*.py"}')
    assert result.splitlines() == ["src/app.py", "src/util/helpers.py", "tests/test_app.py"]


async def test_file_search_under_path(tree: Path, ctx: ToolContext) -> None:
    assert await search(ctx, '{"pattern": "*", "path": "src/util"}') == (
        "src/util/data.json\nsrc/util/helpers.py"
    )
    assert await search(ctx, '{"pattern": "util/*.py", "path": "src"}') == "src/util/helpers.py"


async def test_file_search_no_match_and_errors(tree: Path, ctx: ToolContext) -> None:
    assert await search(ctx, '{"pattern": "*.rs"}') == "No files match '*.rs' under '.'"
    with pytest.raises(ToolError, match=r"'README.md' is not a directory"):
        await search(ctx, '{"pattern": "*", "path": "README.md"}')
    with pytest.raises(ToolError, match=r"does not exist"):
        await search(ctx, '{"pattern": "*", "path": "nope"}')
    with pytest.raises(ToolError, match=r"leads out"):
        await search(ctx, '{"pattern": "*", "path": ".."}')


async def test_file_search_caps_results(project: Path, ctx: ToolContext) -> None:
    for i in range(MAX_SEARCH_RESULTS + 5):
        (project / f"f{i:04}.txt").write_text("")
    lines = (await search(ctx, '{"pattern": "*.txt"}')).splitlines()
    assert len(lines) == MAX_SEARCH_RESULTS + 1
    total = MAX_SEARCH_RESULTS + 5
    assert lines[-1] == (
        f"[showing {MAX_SEARCH_RESULTS} of {total} files; narrow the pattern or path]"
    )


async def test_file_search_does_not_follow_symlinked_dirs_out(
    project: Path, ctx: ToolContext
) -> None:
    outside = project.parent / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("")
    (project / "ext").symlink_to(outside, target_is_directory=True)
    (project / "leak.py").symlink_to(outside / "secret.py")
    assert await search(ctx, '{"pattern": "*.py"}') == "No files match '*.py' under '.'"


async def test_content_search_lines(tree: Path, ctx: ToolContext) -> None:
    result = await grep(ctx, '{"pattern": "TODO"}')
    assert result.splitlines() == ["README.md:2:TODO: write docs", "src/app.py:2:    return 'TODO'"]


async def test_content_search_regex_glob_and_file(tree: Path, ctx: ToolContext) -> None:
    assert await grep(ctx, '{"pattern": "(?i)todo", "glob": "*.json"}') == (
        'src/util/data.json:1:{"todo": true}'
    )
    assert await grep(ctx, '{"pattern": "^def ", "path": "tests"}') == (
        "tests/test_app.py:1:def test_main():"
    )
    assert await grep(ctx, '{"pattern": "VALUE", "path": "src/util/helpers.py"}') == (
        "src/util/helpers.py:1:VALUE = 42"
    )


async def test_content_search_no_match(tree: Path, ctx: ToolContext) -> None:
    assert await grep(ctx, '{"pattern": "zzz"}') == "No matches for 'zzz' in '.'"


async def test_content_search_invalid_regex(tree: Path, ctx: ToolContext) -> None:
    with pytest.raises(
        ToolError, match=r"Invalid regular expression '\(unclosed': .* at position 0"
    ):
        await grep(ctx, '{"pattern": "(unclosed"}')


async def test_content_search_caps_matches(project: Path, ctx: ToolContext) -> None:
    (project / "many.txt").write_text("hit\n" * 250)
    lines = (await grep(ctx, '{"pattern": "hit"}')).splitlines()
    assert len(lines) == MAX_CONTENT_MATCHES + 1
    assert lines[0] == "many.txt:1:hit"
    assert lines[-1].startswith(f"[stopped after {MAX_CONTENT_MATCHES} matches")


async def test_content_search_cuts_long_lines(project: Path, ctx: ToolContext) -> None:
    (project / "long.txt").write_text("needle" + "x" * 1000 + "\n")
    result = await grep(ctx, '{"pattern": "needle"}')
    assert len(result) < 350
    assert result.endswith("…")


async def test_directory_list_skips_vcs_and_caches(tree: Path, ctx: ToolContext) -> None:
    result = (await ls(ctx)).splitlines()
    assert result == [
        "./ (4 entries)",
        f"dir   {'-':>10}  src/",
        f"dir   {'-':>10}  tests/",
        f"file  {24:>10}  README.md",
        f"file  {12:>10}  bin.dat",
    ]


async def test_directory_list_types_and_sizes(project: Path, ctx: ToolContext) -> None:
    (project / "sub").mkdir()
    (project / "a.txt").write_text("12345")
    (project / "ln").symlink_to(project / "a.txt")
    (project / ".git").mkdir()
    result = (await ls(ctx)).splitlines()
    assert result == [
        "./ (3 entries)",
        f"dir   {'-':>10}  sub/",
        f"file  {5:>10}  a.txt",
        f"link  {'-':>10}  ln -> {project / 'a.txt'}",
    ]


async def test_directory_list_subdir_empty_and_errors(project: Path, ctx: ToolContext) -> None:
    (project / "empty").mkdir()
    (project / "f.txt").write_text("")
    assert await ls(ctx, '{"path": "empty"}') == "Directory 'empty' is empty"
    with pytest.raises(ToolError, match=r"not a directory"):
        await ls(ctx, '{"path": "f.txt"}')
    with pytest.raises(ToolError, match=r"outside the project root"):
        await ls(ctx, '{"path": "/"}')
