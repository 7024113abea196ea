"""File-system helpers shared by the file and search tools (blocking; run them in a thread).

How this works and why: a file tool must never hang and never touch more than the file it was
asked for. A FIFO blocks ``open`` until a writer comes, a device can have side effects, so
every read and write checks the file type with ``stat`` first, then opens with
``O_NONBLOCK`` (a FIFO that appears meanwhile cannot block) and ``O_NOFOLLOW`` (the path is
already resolved, so a symlink there now was swapped in), and checks the type again on the
open descriptor. A write also refuses a file with other hard links: writing it would change
the other names too, which may be outside the project or inside ``.git``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.errors import PathEscapeError, ToolError
from loomkin.tools.paths import display_path, protection, resolve_in_project

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "SKIP_DIRS",
    "glob_to_regex",
    "is_binary",
    "read_regular",
    "resolve",
    "walk_files",
    "write_regular",
]

SKIP_DIRS = frozenset(
    {
        ".git",
        ".loomkin",
        "node_modules",
        "__pycache__",
        ".venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
"""Directories the search and listing tools never enter (VCS data, caches, dependencies)."""

_SNIFF_BYTES = 8192


_OPEN_FLAGS = os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC


def resolve(project_root: Path, user_path: str, *, write: bool = False) -> Path:
    """Resolve a model-supplied path inside the project; refuse escapes and protected places.

    Raises:
        ToolError: the path leaves the project, or is protected (``.git`` and ``.loomkin``
            for writes, ``.loomkin/server.json`` for reads).
    """
    try:
        path = resolve_in_project(project_root, user_path)
    except PathEscapeError as exc:
        raise ToolError(str(exc)) from None
    reason = protection(project_root, path, write=write)
    if reason is not None:
        raise ToolError(f"{display_path(project_root, path)!r} is off limits: {reason}")
    return path


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for messages; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _refuse_special(name: str, mode: int) -> None:
    kind = _kind(mode)
    if kind is not None:
        raise ToolError(f"{name!r} is {kind}; file tools only work on regular files")


def read_regular(path: Path, *, name: str, limit: int) -> tuple[bytes, os.stat_result]:
    """Read a regular file of at most ``limit`` bytes, never blocking on a FIFO or device.

    Raises:
        ToolError: the file does not exist, is not a regular file, or is larger than
            ``limit`` bytes.
    """
    try:
        _refuse_special(name, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        raise ToolError(f"File {name!r} does not exist") from None
    except OSError as exc:
        raise ToolError(f"File {name!r} cannot be opened: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        _refuse_special(name, info.st_mode)
        if info.st_size > limit:
            raise ToolError(f"File {name!r} is too large to read ({info.st_size} bytes)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)[: limit + 1], info


def write_regular(path: Path, data: bytes, *, name: str) -> int:
    """Create or overwrite a regular file in place; return its new mtime (ns).

    Raises:
        ToolError: the path is a directory or another non-regular file, has other hard
            links, or cannot be opened.
    """
    try:
        _refuse_special(name, os.stat(path).st_mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | _OPEN_FLAGS, 0o666)
    except OSError as exc:
        raise ToolError(
            f"File {name!r} cannot be opened for writing: {exc.strerror or exc}"
        ) from None
    try:
        info = os.fstat(fd)
        _refuse_special(name, info.st_mode)
        if info.st_nlink > 1:
            raise ToolError(
                f"File {name!r} has {info.st_nlink - 1} other hard link(s); writing it would "
                "change them too, so it is refused (copy it to a new file instead)"
            )
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)


def is_binary(head: bytes) -> bool:
    """Guess whether data is binary: a NUL byte, or not UTF-8, in its first 8 KiB."""
    sample = head[:_SNIFF_BYTES]
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start < len(sample) - 3
    return False


def walk_files(project_root: Path, start: Path) -> Iterator[Path]:
    """Yield the regular files under ``start`` in sorted order, skipping :data:`SKIP_DIRS`.

    Symlinked directories are not entered, symlinked files that lead out of the project are
    skipped (so a search never reads outside the project), and so are FIFOs, sockets,
    devices and files no tool may read (``.loomkin/server.json``).
    """
    root = project_root.resolve()
    if not start.is_dir():
        if _searchable(root, start):
            yield start
        return
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if _searchable(root, path):
                yield path


def _searchable(root: Path, path: Path) -> bool:
    try:
        target = path.resolve() if path.is_symlink() else path
        regular = stat.S_ISREG(os.stat(target).st_mode)
    except (OSError, RuntimeError):  # vanished, unreadable, or a symlink loop
        return False
    if not regular or not target.is_relative_to(root):
        return False
    return protection(root, target, write=False) is None


def relative(project_root: Path, path: Path) -> str:
    """Return ``path`` relative to the project root, POSIX-style."""
    return display_path(project_root, path)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (``*``, ``?``, ``[...]``, ``**``) matching POSIX relative paths.

    A pattern without ``/`` matches the file name at any depth (``*.py`` finds every Python
    file), as models expect; a pattern with ``/`` matches the whole relative path.
    """
    if "/" not in pattern:
        pattern = "**/" + pattern
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            i = _glob_atom(pattern, i, out)
    return re.compile("".join(out) + r"\Z")


def _glob_atom(pattern: str, i: int, out: list[str]) -> int:
    char = pattern[i]
    if char == "*":
        out.append("[^/]*")
    elif char == "?":
        out.append("[^/]")
    elif char == "[":
        end = pattern.find("]", i + 2)
        if end == -1:
            out.append(re.escape(char))
        else:
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            return end + 1
    else:
        out.append(re.escape(char))
    return i + 1
