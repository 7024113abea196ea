"""``file_read``, ``file_write`` and ``file_edit``: text files inside the project.

Every path goes through :func:`~loomkin.tools.paths.resolve_in_project`, so the tools can
never touch a file outside the project; ``.git`` and ``.loomkin`` are never written and
``.loomkin/server.json`` never read (:func:`~loomkin.tools.paths.protection`), and FIFOs,
sockets and devices are refused without blocking. Reads are recorded in the deps'
:class:`~loomkin.tools.base.FileAccessLog`; writing or editing a file the agent has not read
(or that changed on disk since it did) still works, but the result starts with a warning so
the model notices a blind or stale write.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.tools.base import FileAccessLog, ToolArgs, ToolContext, tool
from loomkin.tools.builtin._fs import is_binary, read_regular, relative, resolve, write_regular

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.ids import AgentId

__all__ = [
    "MAX_READ_BYTES",
    "MAX_READ_LINES",
    "FileDeps",
    "FileEditArgs",
    "FileReadArgs",
    "FileWriteArgs",
    "file_edit",
    "file_read",
    "file_write",
]

MAX_READ_LINES = 2000
"""Most lines one ``file_read`` returns."""
MAX_READ_BYTES = 100_000
"""Most characters of file text one ``file_read`` returns."""
MAX_LINE_CHARS = 2000
"""Longer lines are cut (minified files would otherwise fill the context)."""
MAX_FILE_BYTES = 20_000_000
"""Files larger than this are refused outright."""


class FileDeps(Protocol):
    """What the file tools need from the agent's deps."""

    @property
    def file_access(self) -> FileAccessLog:
        """Which files each agent has read (shared by the session's agents)."""
        ...


class FileReadArgs(ToolArgs):
    """Arguments of ``file_read``."""

    path: str = Field(description="File path, relative to the project root.")
    offset: int = Field(default=1, ge=1, description="First line to show (1-based).")
    limit: int = Field(
        default=MAX_READ_LINES,
        ge=1,
        le=MAX_READ_LINES,
        description=f"Most lines to show (at most {MAX_READ_LINES}).",
    )


class FileWriteArgs(ToolArgs):
    """Arguments of ``file_write``."""

    path: str = Field(description="File path, relative to the project root.")
    content: str = Field(description="The complete new content of the file.")


class FileEditArgs(ToolArgs):
    """Arguments of ``file_edit``."""

    path: str = Field(description="File path, relative to the project root.")
    old_string: str = Field(min_length=1, description="Exact text to replace.")
    new_string: str = Field(description="Replacement text.")
    replace_all: bool = Field(
        default=False, description="Replace every occurrence instead of exactly one."
    )


def _path_target(args: FileReadArgs | FileWriteArgs | FileEditArgs, ctx: ToolContext) -> str:
    try:
        return str(resolve(ctx.project_root, args.path))
    except ToolError:
        return args.path  # run() reports the escape; the prompt shows what was asked


@dataclass(frozen=True, slots=True, kw_only=True)
class _Text:
    text: str
    mtime_ns: int


def _load_text(project_root: Path, path: Path) -> _Text:
    name = relative(project_root, path)
    if path.is_dir():
        raise ToolError(f"{name!r} is a directory; use directory_list to see its entries")
    data, stat = read_regular(path, name=name, limit=MAX_FILE_BYTES)
    if is_binary(data):
        raise ToolError(
            f"File {name!r} looks binary ({len(data)} bytes); file_read only shows text files"
        )
    return _Text(text=data.decode("utf-8", errors="replace"), mtime_ns=stat.st_mtime_ns)


def _number_lines(text: str, offset: int, limit: int, name: str) -> str:
    lines = text.splitlines()
    if not lines:
        return f"(file {name!r} is empty)"
    if offset > len(lines):
        raise ToolError(
            f"offset {offset} is past the end of {name!r}, which has {len(lines)} lines"
        )
    out: list[str] = []
    size = 0
    last = offset - 1
    for number in range(offset, min(len(lines), offset - 1 + limit) + 1):
        line = lines[number - 1]
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " [line cut]"
        rendered = f"{number:>6}\t{line}"
        if out and size + len(rendered) > MAX_READ_BYTES:
            break
        out.append(rendered)
        size += len(rendered) + 1
        last = number
    if last < len(lines):
        out.append(
            f"[truncated: showing lines {offset}-{last} of {len(lines)}; "
            f"call file_read with offset={last + 1} to read more]"
        )
    return "\n".join(out)


@tool(name="file_read", category="read", args=FileReadArgs, target=_path_target, idempotent=True)
async def file_read(args: FileReadArgs, ctx: ToolContext, deps: FileDeps) -> str:
    """Read a text file of the project and return its lines, numbered from 1.

    Shows at most 2000 lines or 100 KB at a time; use offset and limit for longer files.
    """
    path = resolve(ctx.project_root, args.path)
    loaded = await asyncio.to_thread(_load_text, ctx.project_root, path)
    result = _number_lines(loaded.text, args.offset, args.limit, relative(ctx.project_root, path))
    deps.file_access.note_read(ctx.agent_id, path, loaded.mtime_ns)
    return result


def _stale_warning(log: FileAccessLog, agent_id: AgentId, path: Path, name: str) -> str:
    try:
        mtime_ns = path.stat().st_mtime_ns
    except FileNotFoundError:
        return ""
    seen = log.last_read(agent_id, path)
    if seen is None:
        return (
            f"Warning: you changed {name!r} without reading it first in this session; "
            "read files before changing them so you do not lose content.\n"
        )
    if seen != mtime_ns:
        return (
            f"Warning: {name!r} changed on disk since you last read it (another agent or "
            "process may have edited it); read it again to check the result.\n"
        )
    return ""


def _write_text(project_root: Path, path: Path, content: str) -> int:
    return write_regular(path, content.encode("utf-8"), name=relative(project_root, path))


# Idempotent: the whole content is written, so a second run leaves the same file.
@tool(name="file_write", category="write", args=FileWriteArgs, target=_path_target, idempotent=True)
async def file_write(args: FileWriteArgs, ctx: ToolContext, deps: FileDeps) -> str:
    """Create or overwrite a file of the project with the given content.

    Missing parent directories are created. Prefer file_edit for changes to existing files.
    """
    path = resolve(ctx.project_root, args.path, write=True)
    name = relative(ctx.project_root, path)
    if path.is_dir():
        raise ToolError(f"{name!r} is a directory; give a file path")
    warning = _stale_warning(deps.file_access, ctx.agent_id, path, name)
    existed = path.exists()
    mtime_ns = await asyncio.to_thread(_write_text, ctx.project_root, path, args.content)
    deps.file_access.note_read(ctx.agent_id, path, mtime_ns)
    lines = len(args.content.splitlines())
    verb = "Overwrote" if existed else "Created"
    return f"{warning}{verb} {name!r} ({len(args.content.encode())} bytes, {lines} lines)"


def _replace(text: str, args: FileEditArgs, name: str) -> tuple[str, int]:
    count = text.count(args.old_string)
    if count == 0:
        raise ToolError(
            f"old_string was not found in {name!r}; it must match the file exactly, "
            "including whitespace and indentation (read the file again to copy it)"
        )
    if count > 1 and not args.replace_all:
        raise ToolError(
            f"old_string occurs {count} times in {name!r}; include more surrounding lines "
            "to make it unique, or set replace_all to true to replace every occurrence"
        )
    return text.replace(args.old_string, args.new_string), count


@tool(name="file_edit", category="write", args=FileEditArgs, target=_path_target)
async def file_edit(args: FileEditArgs, ctx: ToolContext, deps: FileDeps) -> str:
    """Replace exact text in a file of the project.

    old_string must occur exactly once unless replace_all is true. Read the file first.
    """
    if args.old_string == args.new_string:
        raise ToolError("old_string and new_string are identical; nothing to change")
    path = resolve(ctx.project_root, args.path, write=True)
    name = relative(ctx.project_root, path)
    loaded = await asyncio.to_thread(_load_text, ctx.project_root, path)
    new_text, count = _replace(loaded.text, args, name)
    warning = _stale_warning(deps.file_access, ctx.agent_id, path, name)
    mtime_ns = await asyncio.to_thread(_write_text, ctx.project_root, path, new_text)
    deps.file_access.note_read(ctx.agent_id, path, mtime_ns)
    plural = "occurrence" if count == 1 else "occurrences"
    return f"{warning}Edited {name!r}: replaced {count} {plural}"
