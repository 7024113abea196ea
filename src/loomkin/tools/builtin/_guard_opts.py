"""Option parsing for the command guard, and what the guard learns about one program run.

Programs differ in which options take a value; getting that wrong makes an option's value look
like a file operand (or hides an operand inside an option). :class:`Opts` states, per program,
the short options that take a value and the long ones that do; :func:`parse_opts` then applies
GNU getopt's rules: clustered short options (``-rf``), values glued to a short option
(``-n5``, ``-t/dir``), ``--name=value`` and ``--name value``, unambiguous prefixes of long
names (``--target=`` is ``--target-directory=``), and ``--`` ending the options.

:class:`Effects` is what the per-program rules report: the paths a run changes, the links it
creates, the commands and shell scripts it runs, and an outright refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loomkin.tools.builtin._guard_words import Arg

__all__ = ["Effects", "Inner", "Opts", "Parsed", "names", "parse_opts"]


def names(text: str) -> frozenset[str]:
    """The whitespace-separated names in ``text`` (option tables stay compact)."""
    return frozenset(text.split())


@dataclass(frozen=True, slots=True)
class Opts:
    """Which options of one program take a value."""

    short: str = ""
    """Short option letters that take a value (``"nt"`` for ``-n N`` and ``-t DIR``)."""
    long: frozenset[str] = frozenset()
    """Long option names (without ``--``) that take a value."""
    stop_at_operand: bool = False
    """The first operand ends the options (wrappers: what follows is another command)."""


@dataclass(slots=True)
class Parsed:
    """Options (name, value) in order, then the operands."""

    options: list[tuple[str, Arg | None]] = field(default_factory=list)
    operands: list[Arg] = field(default_factory=list)

    def has(self, short: str = "", long: str = "") -> bool:
        """True when the option was given (as ``-x`` or a prefix of ``--long``)."""
        return any(_same(name, short, long) for name, _ in self.options)

    def values(self, short: str = "", long: str = "") -> list[Arg]:
        """The values given to an option, in order."""
        return [v for name, v in self.options if v is not None and _same(name, short, long)]


@dataclass(frozen=True, slots=True)
class Inner:
    """A command another program runs (``nice CMD``, ``find -exec CMD ;``, ``xargs CMD``)."""

    args: list[Arg]
    """The program and its arguments."""
    cwd: Arg | None = None
    """The directory it runs in, when not the current one (``env -C DIR``)."""


@dataclass(slots=True)
class Effects:
    """What running one program does, as far as the guard can tell."""

    writes: list[Arg] = field(default_factory=list)
    """Paths it creates, changes or removes."""
    links: list[Arg] = field(default_factory=list)
    """Targets of links it creates (a link out of the project makes later writes escape)."""
    runs: list[Inner] = field(default_factory=list)
    """Commands it runs."""
    scripts: list[Arg] = field(default_factory=list)
    """Shell source it runs (``sh -c``, ``eval``, ``trap``)."""
    workdirs: list[Arg] = field(default_factory=list)
    """Directories it works in (``make -C``): they must be inside the project."""
    script_from_stdin: bool = False
    """It reads shell commands from its standard input."""
    moves_links: bool = False
    """It may create or move symlinks (``ln``, ``mv``, ``cp -r``, ``tar -x``): a relative
    link moved elsewhere points elsewhere, so later ``..`` paths cannot be judged."""
    refusal: str | None = None
    """Why it is refused outright."""


def _same(name: str, short: str, long: str) -> bool:
    if short and name == f"-{short}":
        return True
    if long and name.startswith("--"):
        given = name[2:]
        return given == long or (len(given) >= 3 and long.startswith(given))
    return False


def _takes_value(name: str, spec: Opts) -> bool:
    return name in spec.long or (
        len(name) >= 3 and sum(1 for full in spec.long if full.startswith(name)) == 1
    )


def parse_opts(args: list[Arg], spec: Opts) -> Parsed:
    """Split ``args`` into options and operands following getopt's rules.

    An argument whose value is unknown counts as an operand. With ``stop_at_operand``, the
    first operand and everything after it are operands.
    """
    parsed = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        text = arg.text
        if text is None or text == "-" or not text.startswith("-"):
            if spec.stop_at_operand:
                parsed.operands.extend(args[i:])
                return parsed
            parsed.operands.append(arg)
        elif text == "--":
            parsed.operands.extend(args[i + 1 :])
            return parsed
        elif text.startswith("--"):
            name, eq, value = text[2:].partition("=")
            if eq:
                parsed.options.append((f"--{name}", Arg(text=value, raw=arg.raw)))
            elif _takes_value(name, spec) and i + 1 < len(args):
                parsed.options.append((f"--{name}", args[i + 1]))
                i += 1
            else:
                parsed.options.append((f"--{name}", None))
        else:
            i += _short_cluster(args, i, spec, parsed)
        i += 1
    return parsed


def _short_cluster(args: list[Arg], i: int, spec: Opts, parsed: Parsed) -> int:
    """Read ``-abc`` at ``args[i]``; return 1 when the next argument was a value, else 0."""
    arg = args[i]
    text = arg.text or ""
    for j in range(1, len(text)):
        letter = text[j]
        if letter in spec.short:
            rest = text[j + 1 :]
            if rest:
                parsed.options.append((f"-{letter}", Arg(text=rest, raw=arg.raw)))
                return 0
            if i + 1 < len(args):
                parsed.options.append((f"-{letter}", args[i + 1]))
                return 1
            parsed.options.append((f"-{letter}", None))
            return 0
        parsed.options.append((f"-{letter}", None))
    return 0
