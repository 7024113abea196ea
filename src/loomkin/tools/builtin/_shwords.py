"""What the shell parser produces: words made of parts, redirections, simple commands."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Command",
    "Heredoc",
    "Lit",
    "Param",
    "Part",
    "Redirect",
    "ShellSyntaxError",
    "Subst",
    "Word",
    "decode_ansi_c",
]


class ShellSyntaxError(ValueError):
    """The command line cannot be read the way the shell would read it."""


@dataclass(frozen=True, slots=True)
class Lit:
    """Literal text of a word; ``quoted`` text is not subject to globbing or brace expansion."""

    text: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter expansion (``$X``, ``${X:-y}``, ``$((1+2))``); its value is not known here."""

    name: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class Subst:
    """A command or process substitution; its commands run, its output is unknown."""

    commands: tuple[Command, ...]


Part = Lit | Param | Subst


@dataclass(frozen=True, slots=True)
class Word:
    """One shell word as its parts, with the source text for messages."""

    parts: tuple[Part, ...]
    raw: str

    def literal(self) -> str | None:
        """Return the word's text when it has no expansion at all (quotes removed)."""
        if all(isinstance(p, Lit) for p in self.parts):
            return "".join(p.text for p in self.parts if isinstance(p, Lit))
        return None

    def literal_text(self) -> str:
        """Return the literal parts joined, expansions left out (for pattern checks)."""
        return "".join(p.text for p in self.parts if isinstance(p, Lit))

    def substitutions(self) -> list[Subst]:
        """Return the command substitutions inside the word."""
        return [p for p in self.parts if isinstance(p, Subst)]


@dataclass(slots=True)
class Heredoc:
    """The body of a ``<<`` heredoc (filled in when the parser reaches the next line)."""

    body: str = ""
    quoted: bool = False
    """A quoted delimiter (``<<'EOF'``): the body is plain data with no expansions."""
    substitutions: list[Subst] = field(default_factory=list)
    """Command substitutions in an unquoted body: they run when the heredoc is read."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirection: operator, optional file descriptor, and target word or heredoc."""

    op: str
    fd: str | None
    target: Word | None
    heredoc: Heredoc | None = None


@dataclass(slots=True)
class Command:
    """A simple command: its words (keywords included) and its redirections."""

    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    stdin_pipe: bool = False
    """True when the command reads the output of the previous one (``a | b``)."""
    is_case_pattern: bool = False
    """True for the ``pattern)`` part of a ``case``: words, not a command."""
    joined_by: str = ""
    """The operator before the command (``&&``, ``;``, ``\n``...; ``""`` for the first)."""
    isolated: bool = False
    """It runs in a subshell of its own (a pipeline member, or in the background): its
    ``cd`` and assignments do not reach the commands after it."""
    depth: int = 0
    """How many ``( ... )`` subshells it is in; they end with their ``cd`` and variables."""


_ANSI_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def decode_ansi_c(text: str, start: int) -> tuple[str, int]:
    """Decode a ``$'...'`` quote whose body starts at ``start``; return it and the end index.

    Raises:
        ShellSyntaxError: the quote is never closed.
    """
    out: list[str] = []
    i = start
    while True:
        if i >= len(text):
            raise ShellSyntaxError("a $'...' quote is never closed")
        c = text[i]
        if c == "'":
            return "".join(out), i + 1
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        decoded, i = _ansi_escape(text, i + 1)
        out.append(decoded)


def _ansi_escape(text: str, i: int) -> tuple[str, int]:
    c = text[i]
    if c in _ANSI_ESCAPES:
        return _ANSI_ESCAPES[c], i + 1
    widths = {"x": (16, 2), "u": (16, 4), "U": (16, 8)}
    if c in widths:
        base, most = widths[c]
        return _ansi_number(text, i + 1, base, most, default="\\" + c)
    if c in "01234567":
        return _ansi_number(text, i, 8, 3, default="")
    if c == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1]) & 0x1F), i + 2
    return "\\" + c, i + 1


def _ansi_number(text: str, i: int, base: int, most: int, *, default: str) -> tuple[str, int]:
    allowed = "01234567" if base == 8 else "0123456789abcdefABCDEF"
    j = i
    while j < len(text) and j - i < most and text[j] in allowed:
        j += 1
    if j == i:
        return default, i
    return chr(min(int(text[i:j], base), 0x10FFFF)), j
