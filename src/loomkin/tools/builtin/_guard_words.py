"""Words as the command guard sees them: expanded where possible, and judged as paths.

How this works and why: the guard cannot run the shell, so it expands only what it can know.
Quotes are removed, brace expansion (``{a,b}``, ``{1..3}``) is applied the way bash does it,
``$PWD`` and ``~+`` become the simulated working directory, ``$HOME`` and ``~`` stay a leading
``~`` (always outside the project) and variables assigned earlier on the same command line
are substituted. Anything else (another variable, a command substitution, arithmetic) makes
the word unknown (``Arg.text is None``): the guard then refuses to use it as a program name
or as the target of a write, because it cannot tell where it points.

A path is judged lexically (``..``, absolute paths, glob components that could match ``..``)
and physically (symlinks already on disk, and what a glob matches now), and a write into
``.git`` or ``.loomkin``, or to the project's ``loomkin.toml``, is reported as protected.
Physical checks read the file system, so callers run the guard in a worker thread.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.tools.builtin._shwords import Lit, Param
from loomkin.tools.paths import CONFIG_FILE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.tools.builtin._shwords import Word

__all__ = ["PROTECTED_DIRS", "SAFE_DEVICES", "Arg", "PathJudge", "expand_word"]

SAFE_DEVICES = frozenset(
    {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero", "/dev/full"}
)
"""Device files a command may write to (they change nothing)."""
PROTECTED_DIRS = frozenset({".git", ".loomkin"})
"""Directories no command writes into: git internals and Loomkin's own state."""

_GLOB_CHARS = frozenset("*?[")
_MAX_FIELDS = 256
_MAX_GLOB_MATCHES = 2000


@dataclass(frozen=True, slots=True)
class Arg:
    """One word after expansion."""

    text: str | None
    """The value, or None when it depends on something the guard cannot know."""
    raw: str
    """The source text, for messages."""

    @staticmethod
    def known(text: str) -> Arg:
        """An argument whose value is ``text`` (synthesised by the guard)."""
        return Arg(text=text, raw=text)


def expand_word(word: Word, variables: Mapping[str, str | None], cwd: Path | None) -> list[Arg]:
    """Expand one word into the fields the shell would pass (brace expansion included).

    Args:
        word: The parsed word.
        variables: Values of variables assigned earlier on the line (None: unknown).
        cwd: The simulated working directory (the value of ``$PWD``); None when uncertain.
    """
    chars: list[tuple[str, bool]] = []  # (character, may take part in brace expansion)
    for index, part in enumerate(word.parts):
        if isinstance(part, Lit):
            text = part.text
            if index == 0 and not part.quoted and (text == "~+" or text.startswith("~+/")):
                if cwd is None:
                    return [Arg(text=None, raw=word.raw)]
                text = str(cwd) + text[2:]
            chars.extend((c, not part.quoted) for c in text)
        elif isinstance(part, Param):
            value = _parameter(part.name, variables, cwd)
            if value is None or (not part.quoted and any(c in value for c in " \t\n")):
                return [Arg(text=None, raw=word.raw)]  # unknown, or split into fields
            chars.extend((c, False) for c in value)
        else:
            return [Arg(text=None, raw=word.raw)]
    fields = _brace_expand(chars)
    if fields is None:
        return [Arg(text=None, raw=word.raw)]
    return [Arg(text=f, raw=word.raw) for f in fields]


def _parameter(name: str, variables: Mapping[str, str | None], cwd: Path | None) -> str | None:
    if name == "PWD":
        return None if cwd is None else str(cwd)
    if name == "HOME":
        return "~"  # judged as outside the project, whatever HOME is at run time
    return variables.get(name)


def _brace_expand(chars: list[tuple[str, bool]]) -> list[str] | None:
    """Bash brace expansion over unquoted braces; None when it would explode."""
    results = [chars]
    done: list[str] = []
    while results:
        current = results.pop()
        expanded = _expand_first_brace(current)
        if expanded is None:
            done.append("".join(c for c, _ in current))
        else:
            results.extend(reversed(expanded))
        if len(done) + len(results) > _MAX_FIELDS:
            return None
    return done


def _expand_first_brace(
    chars: list[tuple[str, bool]],
) -> list[list[tuple[str, bool]]] | None:
    for start, (c, active) in enumerate(chars):
        if c != "{" or not active:
            continue
        depth = 0
        commas: list[int] = []
        for end in range(start, len(chars)):
            ch, act = chars[end]
            if not act:
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            elif ch == "," and depth == 1:
                commas.append(end)
        else:
            continue  # no closing brace: a literal "{"
        prefix, suffix = chars[:start], chars[end + 1 :]
        if commas:
            bounds = [start, *commas, end]
            return [prefix + chars[a + 1 : b] + suffix for a, b in itertools.pairwise(bounds)]
        sequence = _sequence("".join(ch for ch, _ in chars[start + 1 : end]))
        if sequence is not None:
            return [prefix + [(ch, False) for ch in item] + suffix for item in sequence]
    return None


def _sequence(body: str) -> list[str] | None:
    """``1..3``, ``a..c``, ``1..10..2``: the items, or None when it is not a sequence."""
    pieces = body.split("..")
    if len(pieces) not in {2, 3}:
        return None
    step = 1
    if len(pieces) == 3:
        if not pieces[2].lstrip("-").isdigit():
            return None
        step = abs(int(pieces[2])) or 1
    first, last = pieces[0], pieces[1]
    if first.lstrip("-").isdigit() and last.lstrip("-").isdigit():
        lo, hi = int(first), int(last)
        values = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
        return [str(v) for v in values][: _MAX_FIELDS + 1]
    if len(first) == 1 and len(last) == 1:
        lo, hi = ord(first), ord(last)
        codes = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
        return [chr(v) for v in codes][: _MAX_FIELDS + 1]
    return None


class PathJudge:
    """Decides whether a path a command names stays inside the project.

    Args:
        project_root: The project directory (resolved here).
    """

    __slots__ = ("root",)

    def __init__(self, project_root: Path) -> None:
        self.root = Path(os.path.realpath(project_root))

    def outside(self, value: str, cwd: Path) -> bool:
        """True when ``value`` (relative to ``cwd``) is, or may be, outside the project."""
        if value.startswith("~"):
            return True
        for candidate in self._candidates(value, cwd):
            if not candidate.is_relative_to(self.root):
                return True
            if not Path(os.path.realpath(candidate)).is_relative_to(self.root):
                return True
        return False

    def write_problem(self, value: str, cwd: Path) -> str | None:
        """Why writing ``value`` is refused ("outside the project", ...), or None."""
        if value in SAFE_DEVICES:
            return None
        if self.outside(value, cwd):
            return "outside the project"
        for candidate in self._candidates(value, cwd):
            for path in (candidate, Path(os.path.realpath(candidate))):
                parts = path.relative_to(self.root).parts
                protected = PROTECTED_DIRS.intersection(parts)
                if protected:
                    return f"inside {min(protected)}/, which only Loomkin and git may change"
                if parts == (CONFIG_FILE,):
                    return f"{CONFIG_FILE}, the permissions only the user may change"
        return None

    def touches_loomkin_state(self, value: str, cwd: Path) -> bool:
        """True when ``value`` names something inside any ``.loomkin`` directory."""
        parts = Path(value).parts
        if any(p.startswith(".") and fnmatch.fnmatchcase(".loomkin", p) for p in parts):
            return True  # .loomkin itself, or a glob that can match it (.loom*, .*)
        if value.startswith("~"):
            return False
        return any(
            ".loomkin" in Path(os.path.realpath(c)).parts for c in self._candidates(value, cwd)
        )

    def _candidates(self, value: str, cwd: Path) -> list[Path]:
        """The lexical path, and what a glob in it matches on disk right now."""
        base = value if value.startswith("/") else os.path.join(cwd, value)
        if not _GLOB_CHARS.intersection(value):
            return [Path(os.path.normpath(base))]
        # A glob component that can match ".." (".*", ".?") climbs out like ".." would.
        parts = [".." if fnmatch.fnmatchcase("..", p) else p for p in base.split("/")]
        lexical = Path(os.path.normpath("/".join(parts) or "/"))
        found = [lexical]
        for index, match in enumerate(glob.iglob(base)):
            if index >= _MAX_GLOB_MATCHES:
                break
            found.append(Path(os.path.normpath(match)))
        return found
