"""``file_search``, ``content_search`` and ``directory_list``: finding things in the project.

All three skip :data:`~loomkin.tools.builtin._fs.SKIP_DIRS`, never follow a symlink out of the
project, skip FIFOs, sockets and devices (reading one could block forever) and
``.loomkin/server.json``, return paths relative to the project root in sorted order, and cap
their output with a note saying so.
"""

from __future__ import annotations

import asyncio
import re
import stat
from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.tools.base import ToolArgs, ToolContext, tool
from loomkin.tools.builtin._fs import (
    SKIP_DIRS,
    glob_to_regex,
    is_binary,
    read_regular,
    relative,
    resolve,
    walk_files,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "MAX_CONTENT_MATCHES",
    "MAX_LIST_ENTRIES",
    "MAX_SEARCH_RESULTS",
    "ContentSearchArgs",
    "DirectoryListArgs",
    "FileSearchArgs",
    "content_search",
    "directory_list",
    "file_search",
]

MAX_SEARCH_RESULTS = 200
"""Most paths one ``file_search`` returns."""
MAX_CONTENT_MATCHES = 100
"""Most matching lines one ``content_search`` returns."""
MAX_LIST_ENTRIES = 500
"""Most entries one ``directory_list`` returns."""
MAX_MATCH_CHARS = 300
"""Matching lines longer than this are cut."""
MAX_SEARCHED_FILE_BYTES = 5_000_000
"""``content_search`` skips larger files."""


class FileSearchArgs(ToolArgs):
    """Arguments of ``file_search``."""

    pattern: str = Field(
        min_length=1,
        description="Glob, e.g. '*.py' (any depth), 'src/**/test_*.py' or 'docs/*.md'.",
    )
    path: str = Field(default=".", description="Directory to search, relative to the root.")


class ContentSearchArgs(ToolArgs):
    """Arguments of ``content_search``."""

    pattern: str = Field(min_length=1, description="Regular expression (Python syntax).")
    path: str = Field(default=".", description="File or directory to search.")
    glob: str | None = Field(default=None, description="Only search files matching this glob.")


class DirectoryListArgs(ToolArgs):
    """Arguments of ``directory_list``."""

    path: str = Field(default=".", description="Directory to list, relative to the root.")


def _dir_target(
    args: FileSearchArgs | ContentSearchArgs | DirectoryListArgs, ctx: ToolContext
) -> str:
    try:
        return str(resolve(ctx.project_root, args.path))
    except ToolError:
        return args.path


def _search_start(ctx: ToolContext, user_path: str, *, allow_file: bool) -> Path:
    start = resolve(ctx.project_root, user_path)
    name = relative(ctx.project_root, start)
    try:
        mode = start.stat().st_mode
    except FileNotFoundError:
        raise ToolError(f"Path {name!r} does not exist") from None
    if not allow_file and not stat.S_ISDIR(mode):
        raise ToolError(f"{name!r} is not a directory")
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise ToolError(f"{name!r} is not a regular file or directory; it cannot be searched")
    return start


def _find_files(project_root: Path, start: Path, pattern: str) -> list[str]:
    matcher = glob_to_regex(pattern)
    found: list[str] = []
    for path in walk_files(project_root, start):
        rel_to_start = path.relative_to(start).as_posix()
        if matcher.match(rel_to_start):
            found.append(relative(project_root, path))
    return found


@tool(name="file_search", category="read", args=FileSearchArgs, target=_dir_target, idempotent=True)
async def file_search(args: FileSearchArgs, ctx: ToolContext, deps: object) -> str:
    """Find files of the project whose path matches a glob; returns sorted relative paths.

    A pattern without '/' matches file names at any depth. Skips .git, .venv, node_modules
    and caches.
    """
    start = _search_start(ctx, args.path, allow_file=False)
    found = await asyncio.to_thread(_find_files, ctx.project_root, start, args.pattern)
    if not found:
        return f"No files match {args.pattern!r} under {relative(ctx.project_root, start)!r}"
    lines = found[:MAX_SEARCH_RESULTS]
    if len(found) > MAX_SEARCH_RESULTS:
        lines.append(
            f"[showing {MAX_SEARCH_RESULTS} of {len(found)} files; narrow the pattern or path]"
        )
    return "\n".join(lines)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ToolError(f"Invalid regular expression {pattern!r}: {exc.msg}{where}") from None


def _grep_file(project_root: Path, path: Path, regex: re.Pattern[str], out: list[str]) -> None:
    name = relative(project_root, path)
    try:
        data, _ = read_regular(path, name=name, limit=MAX_SEARCHED_FILE_BYTES)
    except ToolError:
        return  # too large, vanished, unreadable or no longer regular: skipped, like grep -s
    if is_binary(data):
        return
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if regex.search(line):
            shown = line if len(line) <= MAX_MATCH_CHARS else line[:MAX_MATCH_CHARS] + "…"
            out.append(f"{name}:{number}:{shown}")
            if len(out) > MAX_CONTENT_MATCHES:
                return


def _grep(project_root: Path, start: Path, regex: re.Pattern[str], glob: str | None) -> list[str]:
    matcher = glob_to_regex(glob) if glob else None
    out: list[str] = []
    for path in walk_files(project_root, start):
        rel = path.relative_to(start).as_posix() if start.is_dir() else path.name
        if matcher is not None and not matcher.match(rel):
            continue
        _grep_file(project_root, path, regex, out)
        if len(out) > MAX_CONTENT_MATCHES:
            break
    return out


@tool(
    name="content_search",
    category="read",
    args=ContentSearchArgs,
    target=_dir_target,
    idempotent=True,
)
async def content_search(args: ContentSearchArgs, ctx: ToolContext, deps: object) -> str:
    """Search file contents with a regular expression; returns 'file:line:text' lines.

    Returns at most 100 matches. Skips binary files, .git, .venv, node_modules and caches.
    """
    regex = _compile(args.pattern)
    start = _search_start(ctx, args.path, allow_file=True)
    found = await asyncio.to_thread(_grep, ctx.project_root, start, regex, args.glob)
    if not found:
        return f"No matches for {args.pattern!r} in {relative(ctx.project_root, start)!r}"
    if len(found) > MAX_CONTENT_MATCHES:
        found = found[:MAX_CONTENT_MATCHES]
        found.append(
            f"[stopped after {MAX_CONTENT_MATCHES} matches; narrow the pattern, path or glob]"
        )
    return "\n".join(found)


def _list_dir(start: Path) -> tuple[list[str], int]:
    """The rows of a listing, and how many special files (FIFOs, sockets...) were left out."""
    rows: list[str] = []
    special = 0
    for entry in sorted(start.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
        if entry.name in SKIP_DIRS:
            continue
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            rows.append(f"link  {'-':>10}  {entry.name} -> {entry.readlink()}")
        elif stat.S_ISDIR(info.st_mode):
            rows.append(f"dir   {'-':>10}  {entry.name}/")
        elif stat.S_ISREG(info.st_mode):
            rows.append(f"file  {info.st_size:>10}  {entry.name}")
        else:
            special += 1
    return rows, special


@tool(
    name="directory_list",
    category="read",
    args=DirectoryListArgs,
    target=_dir_target,
    idempotent=True,
)
async def directory_list(args: DirectoryListArgs, ctx: ToolContext, deps: object) -> str:
    """List a directory of the project: type, size in bytes and name of each entry.

    Directories come first. Skips .git, .venv, node_modules and caches.
    """
    start = _search_start(ctx, args.path, allow_file=False)
    rows, special = await asyncio.to_thread(_list_dir, start)
    name = relative(ctx.project_root, start)
    note = [f"[{special} special files (FIFOs, sockets, devices) not shown]"] if special else []
    if not rows:
        return "\n".join([f"Directory {name!r} is empty", *note])
    header = f"{name}/ ({len(rows)} entries)"
    if len(rows) > MAX_LIST_ENTRIES:
        rows = [*rows[:MAX_LIST_ENTRIES], f"[showing {MAX_LIST_ENTRIES} of {len(rows)} entries]"]
    return "\n".join([header, *rows, *note])
