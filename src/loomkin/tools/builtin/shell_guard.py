"""The shell tool's guard: refuses commands that act outside the project, before they run.

How this works and why: the command line is parsed the way ``sh`` reads it
(:mod:`~loomkin.tools.builtin._shparse`); what cannot be parsed (an unbalanced quote, an
unterminated ``$(``) is refused, since the guard cannot know what would run. Each simple
command is then checked in order, with a simulated working directory (``cd``) and the
variables assigned on the line:

* command substitutions, heredoc substitutions and process substitutions are checked first
  (they run first);
* keywords and grouping (``if``, ``while``, ``{``, ``!``, subshells) are skipped, and wrappers
  (``nice``, ``env -u X``, ``timeout``, ``xargs``, ``sudo``...) are unwrapped, so the allow and
  deny lists apply to the command that really runs;
* ``sh -c``, ``eval``, ``trap`` and heredocs or here-strings fed to a shell are parsed in turn;
  commands piped into a shell are refused;
* every path a command writes (its operands, ``-t DIR``, ``of=``, redirections, link targets,
  ``-C DIR``) must stay inside the project and out of ``.git``/``.loomkin``; a path that
  depends on an unknown variable or on command output is refused as a write target;
* reading Loomkin's state (``.loomkin``) or another process's environment is refused.

A ``cd`` may fail, and then the commands after it run where it left them: relative paths are
judged from every directory the line may be in (only ``&&`` proves the ``cd`` worked), and
a ``cd`` inside ``( ... )``, a pipeline or a background job ends there, as in the shell.

This is defence in depth, not the boundary: interpreters (``python -c``, scripts, ``make``)
run code the guard does not read. Where bubblewrap works, the shell also runs in a sandbox
(:mod:`~loomkin.tools.builtin.sandbox`); where it does not, this guard is all there is, which
is why it refuses what it cannot check instead of letting it through.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.errors import ToolError
from loomkin.tools.builtin._guard_opts import names
from loomkin.tools.builtin._guard_programs import program_effects
from loomkin.tools.builtin._guard_words import SAFE_DEVICES, Arg, PathJudge, expand_word
from loomkin.tools.builtin._shparse import parse_script
from loomkin.tools.builtin._shwords import ShellSyntaxError
from loomkin.tools.builtin.sandbox import Sandbox, default_sandbox

if TYPE_CHECKING:
    from loomkin.tools.builtin._guard_opts import Effects
    from loomkin.tools.builtin._shwords import Command, Redirect, Word

__all__ = ["ShellPolicy", "check_command"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellPolicy:
    """The ``[shell]`` settings of ``loomkin.toml`` as the shell tool uses them."""

    allow: frozenset[str] = field(default_factory=frozenset)
    """When non-empty, only commands whose program name is listed may run (wrappers such as
    ``nice`` or ``timeout`` are looked through: the command they run must be listed)."""
    deny: frozenset[str] = field(default_factory=frozenset)
    """Program names (``"docker"``) or word prefixes (``"git push"``) refused; deny wins."""
    default_timeout_s: float = 30.0
    """Timeout when the model gives none."""
    max_timeout_s: float = 600.0
    """Upper bound on the timeout the model may ask for."""
    output_cap: int = 10_000
    """Most characters of output returned (head and tail are kept)."""
    network: bool = False
    """Whether sandboxed commands may use the network (``[shell] network``)."""
    sandbox: Sandbox = field(default_factory=default_sandbox, compare=False)
    """Where commands run: the process-wide bubblewrap sandbox unless a test passes another."""


_MAX_DEPTH = 8
_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until"})
_GROUPING = frozenset({"{", "}", "!"})
# Commands whose words are data, not a program run: loop and case headers, [[ tests ]],
# function headers (their substitutions are still checked).
_DECLARATIONS = frozenset({"for", "select", "case", "esac", "in", "[[", "function"})
_OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_WRAPPERS = names(
    "nice nohup setsid stdbuf builtin exec command time ionice chrt taskset timeout unbuffer "
    "chronic env xargs flock"
)
_ROOT_OR_HOME = frozenset({"/", "/*", "~", "~/", "~/*"})
_FORK_BOMB = re.compile(r"(\S+)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1[^}]*&[^}]*\}")
_PIPE_TO_SHELL = re.compile(
    r"\b(?:curl|wget)\b[^;&\n]*\|\s*(?:sudo\s+)?(?:ba|z|da|k|fi)?sh\b"
    r"|\b(?:ba|z|da|k)?sh\b[^|;&\n]*(?:\$\(|<\(|`)\s*(?:curl|wget)\b"
)
_OTHER_PROCESS_SECRETS = re.compile(r"/proc/.*(?:environ|/mem\b)")
_RELINKED = (
    "it goes through '..' after a command on this line created or moved links, so where it "
    "leads cannot be known before the line runs (run the commands separately)"
)
_CD_MAY_FAIL = (
    " (if an earlier cd failed, the line is still where it was; join a cd and the commands "
    "that depend on it with &&)"
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


def _refuse(reason: str) -> ToolError:
    return ToolError(
        f"Refused to run this command: {reason}. The shell tool blocks destructive commands "
        "and anything acting outside the project; work inside the project directory."
    )


def check_command(command: str, project_root: Path, policy: ShellPolicy) -> None:
    """Refuse ``command`` if it may act outside the project or breaks the allow/deny lists.

    Reads the file system (symlinks, globs): call it from a worker thread.

    Args:
        command: The shell command line the model asked for.
        project_root: The project directory (the command runs there).
        policy: Allow and deny lists.

    Raises:
        ToolError: the command is refused; the message names the reason.
    """
    if not command.strip():
        raise ToolError("The command is empty")
    if "\0" in command:
        raise _refuse("it contains a NUL byte")
    if _FORK_BOMB.search(command):
        raise _refuse("it looks like a fork bomb")
    if _PIPE_TO_SHELL.search(command):
        raise _refuse("it pipes a downloaded script (curl/wget) into a shell")
    if policy.allow and ("$(" in command or "`" in command):
        raise _refuse("command substitution is not allowed while a [shell] allow list is set")
    judge = PathJudge(project_root)
    _Checker(judge=judge, policy=policy, cwd=judge.root).text(command)


@dataclass(slots=True)
class _Line:
    """What one command line did to the file system, seen by every nested checker."""

    relinked: bool = False
    """A command may have created or moved symlinks: ``..`` after it cannot be judged."""


@dataclass(slots=True, kw_only=True)
class _Checker:
    """Walks the commands of one line, keeping the simulated directory and variables."""

    judge: PathJudge
    policy: ShellPolicy
    cwd: Path
    others: tuple[Path, ...] = ()
    """Other directories the line may be in (a ``cd`` before them may have failed)."""
    pending: tuple[Path, ...] = ()
    """Where the line stays if a ``cd`` of the current ``&&`` chain fails."""
    variables: dict[str, str | None] = field(default_factory=dict)
    dirs: list[Path] = field(default_factory=list)
    depth: int = 0
    line: _Line = field(default_factory=_Line)

    def nested(self, *, fresh_variables: bool = False) -> _Checker:
        """A checker for a subshell or another shell (its ``cd`` does not leak back)."""
        if self.depth >= _MAX_DEPTH:
            raise _refuse("shells and substitutions are nested too deeply to check")
        variables = {} if fresh_variables else dict(self.variables)
        return replace(self, variables=variables, dirs=list(self.dirs), depth=self.depth + 1)

    def cwds(self) -> list[Path]:
        """Every directory the current command may run in."""
        return [self.cwd, *self.others]

    def pwd(self) -> Path | None:
        """The value of ``$PWD`` when it is certain."""
        return None if self.others else self.cwd

    def write_problem(self, text: str) -> str | None:
        if self.line.relinked and ".." in Path(text).parts:
            return _RELINKED
        problem = self.judge.write_problem(text, self.cwd)
        if problem is None:
            others = (self.judge.write_problem(text, c) for c in self.others)
            problem = next((f"{p}{_CD_MAY_FAIL}" for p in others if p is not None), None)
        return problem

    def outside(self, text: str) -> bool:
        return any(self.judge.outside(text, c) for c in self.cwds())

    def text(self, source: str) -> None:
        try:
            commands = parse_script(source)
        except ShellSyntaxError as exc:
            raise _refuse(f"it cannot be parsed ({exc}), so it cannot be checked") from None
        saved: list[_Checker] = []
        for command in commands:
            while len(saved) < command.depth:  # entering ( ... ): remember where we were
                saved.append(replace(self, variables=dict(self.variables), dirs=list(self.dirs)))
            while len(saved) > command.depth:  # leaving it: its cd and variables end
                self.restore(saved.pop())
            if command.joined_by != "&&":
                # A cd that failed earlier no longer stops the commands: both places count.
                self.others = tuple(dict.fromkeys([*self.others, *self.pending]))
                self.pending = ()
            if command.isolated:
                self.nested().command(command)
            else:
                self.command(command)

    def restore(self, state: _Checker) -> None:
        self.cwd, self.others, self.pending = state.cwd, state.others, state.pending
        self.variables, self.dirs = state.variables, state.dirs

    def substitutions(self, command: Command) -> None:
        """Check what command, heredoc and process substitutions run (before the command)."""
        found = [s for word in _all_words(command) for s in word.substitutions()]
        for redirect in command.redirects:
            found.extend(redirect.heredoc.substitutions if redirect.heredoc else ())
        for substitution in found:
            inner = self.nested()
            for nested in substitution.commands:
                inner.command(nested)

    def command(self, command: Command) -> None:
        self.substitutions(command)
        if command.is_case_pattern:
            return
        for word in _all_words(command):
            self.secret_read(word)
        for redirect in command.redirects:
            self.redirect(redirect)
        words = list(command.words)
        while words and (words[0].literal() in _KEYWORDS | _GROUPING):
            words = words[1:]
        if words and words[0].literal() in _DECLARATIONS:
            return
        assignments: list[Word] = []
        while words and _ASSIGNMENT.match(words[0].literal_text()) and words[0].parts:
            assignments.append(words.pop(0))
        if not words:
            self.assign(assignments)
            return
        args = [arg for word in words for arg in expand_word(word, self.variables, self.pwd())]
        self.run(args, stdin=_stdin_script(command, self))

    def assign(self, assignments: list[Word]) -> None:
        for word in assignments:
            fields = expand_word(word, self.variables, self.pwd())
            name = word.literal_text().split("=", 1)[0].rstrip("+")
            value = fields[0].text if len(fields) == 1 else None
            self.variables[name] = value.split("=", 1)[1] if value is not None else None

    def secret_read(self, word: Word) -> None:
        literal = word.literal_text()
        if _OTHER_PROCESS_SECRETS.search(literal):
            raise _refuse(f"{word.raw!r} reads another process's environment or memory")
        for arg in expand_word(word, self.variables, self.pwd()):
            value = arg.text if arg.text is not None else literal
            if value and any(
                self.judge.touches_loomkin_state(value.split("=")[-1], c) for c in self.cwds()
            ):
                raise _refuse(f"{word.raw!r} is Loomkin's own state (.loomkin), not the project")

    def redirect(self, redirect: Redirect) -> None:
        target = redirect.target
        if target is None or redirect.op not in _OUTPUT_REDIRECTS | {">&"}:
            return
        fields = expand_word(target, self.variables, self.pwd())
        text = fields[0].text if len(fields) == 1 else None
        if redirect.op == ">&" and text is not None and (text.isdigit() or text == "-"):
            return  # 2>&1: duplicates a descriptor
        if text is None:
            raise _refuse(f"it redirects output to {target.raw!r}, which the guard cannot resolve")
        if text in SAFE_DEVICES or text.startswith("/dev/fd/"):
            return
        problem = self.write_problem(text)
        if problem is not None:
            raise _refuse(f"it redirects output to {target.raw!r}, {problem}")

    def run(self, args: list[Arg], *, stdin: str | bool | None) -> None:
        """Check one program run; ``stdin`` is a known script, True for unknown input."""
        if not args:
            return
        program = args[0]
        if program.text is None:
            raise _refuse(f"the program name {program.raw!r} comes from a variable or output")
        name = os.path.basename(program.text)
        _check_lists(name, args[1:], self.policy)
        if name in {"cd", "pushd", "popd"}:
            self.change_directory(name, args[1:])
            return
        effects = program_effects(name, args[1:])
        if effects.refusal is not None:
            raise _refuse(effects.refusal)
        self.special_destruction(name, args[1:])
        # A wrapper's command reads the wrapper's standard input; find and xargs give theirs
        # none that holds commands.
        self.effects(name, effects, stdin=None if name in {"find", "xargs"} else stdin)
        if effects.script_from_stdin:
            if stdin is True:
                raise _refuse(f"it pipes commands into {name}, which the guard cannot read")
            if isinstance(stdin, str):
                self.nested(fresh_variables=True).text(stdin)

    def effects(self, name: str, effects: Effects, *, stdin: str | bool | None) -> None:
        self.line.relinked = self.line.relinked or effects.moves_links
        for target in effects.writes:
            if target.text is None:
                raise _refuse(f"{name} would change {target.raw!r}, which the guard cannot resolve")
            problem = self.write_problem(target.text)
            if problem is not None:
                raise _refuse(f"{name} would change {target.raw!r}, {problem}")
        for link in effects.links:
            if link.text is None or self.write_problem(link.text) is not None:
                raise _refuse(f"{name} would link to {link.raw!r}, outside the project")
        for workdir in effects.workdirs:
            if workdir.text is None or self.outside(workdir.text):
                raise _refuse(f"{name} would work in {workdir.raw!r}, outside the project")
        for inner in effects.runs:
            checker = self.nested()
            if inner.cwd is not None:
                checker.change_directory("cd", [inner.cwd])
            checker.run(inner.args, stdin=stdin)
        for script in effects.scripts:
            if script.text is None:
                raise _refuse(f"{name} runs {script.raw!r}, which the guard cannot resolve")
            self.nested(fresh_variables=True).text(script.text)

    def special_destruction(self, name: str, args: list[Arg]) -> None:
        texts = [a.text for a in args]
        operands = [t for t in texts if t is not None and not t.startswith("-")]
        if (
            name == "rm"
            and _is_recursive(texts)
            and ("--no-preserve-root" in texts or any(op in _ROOT_OR_HOME for op in operands))
        ):
            raise _refuse("rm -rf of / or of the home directory (~)")
        if name in {"chmod", "chown", "chgrp"} and any(op in _ROOT_OR_HOME for op in operands):
            raise _refuse(f"{name} on / or on the home directory")

    def change_directory(self, name: str, args: list[Arg]) -> None:
        # If the cd fails, the line stays where it was: remembered until the && chain ends.
        self.pending = tuple(dict.fromkeys([*self.pending, *self.cwds()]))
        if name == "popd":
            if not self.dirs:
                raise _refuse("popd without a matching pushd leaves the project")
            self.cwd, self.others = self.dirs.pop(), ()
            return
        operands = [
            a for a in args if a.text is None or not a.text.startswith("-") or a.text == "-"
        ]
        if not operands or operands[0].text == "-":
            raise _refuse(f"{name} without a directory (or to '-') leaves the project")
        target = operands[0].text
        if target is None:
            raise _refuse(f"{name} to {operands[0].raw!r} cannot be checked (a variable or output)")
        if self.line.relinked and ".." in Path(target).parts:
            raise _refuse(f"{name} to {operands[0].raw!r}: {_RELINKED}")
        if self.judge.outside(target, self.cwd):
            raise _refuse(f"{name} to {operands[0].raw!r} leaves the project")
        if self.outside(target):
            raise _refuse(f"{name} to {operands[0].raw!r} may leave the project{_CD_MAY_FAIL}")
        if name == "pushd":
            self.dirs.append(self.cwd)
        moved = [Path(os.path.normpath(c / target)) for c in self.cwds()]
        self.cwd, self.others = moved[0], tuple(dict.fromkeys(moved[1:]))


def _all_words(command: Command) -> list[Word]:
    targets = [r.target for r in command.redirects if r.target is not None]
    return [*command.words, *targets]


def _stdin_script(command: Command, checker: _Checker) -> str | bool | None:
    """What a shell run by ``command`` would read as commands from its standard input."""
    for redirect in reversed(command.redirects):
        if redirect.fd not in {None, "0"}:
            continue
        if redirect.heredoc is not None:
            return redirect.heredoc.body
        if redirect.op == "<<<" and redirect.target is not None:
            fields = expand_word(redirect.target, checker.variables, checker.pwd())
            return fields[0].text if len(fields) == 1 and fields[0].text is not None else True
        if redirect.op == "<":
            return None  # a script file: opaque, like `sh script.sh`
    return True if command.stdin_pipe else None


def _is_recursive(texts: list[str | None]) -> bool:
    for text in texts:
        if text is None or text == "--":
            return False
        if text == "--recursive" or (
            text.startswith("-") and not text.startswith("--") and set(text[1:]) & {"r", "R"}
        ):
            return True
    return False


def _check_lists(name: str, args: list[Arg], policy: ShellPolicy) -> None:
    words = [
        name,
        *(a.text if a.text is not None else a.raw for a in _skip_git_globals(name, args)),
    ]
    for entry in policy.deny:
        entry_words = entry.split()
        if entry_words and words[: len(entry_words)] == entry_words:
            raise _refuse(f"{entry!r} is on the [shell] deny list in loomkin.toml")
    if policy.allow and name not in policy.allow and name not in _WRAPPERS:
        allowed = ", ".join(sorted(policy.allow))
        raise _refuse(f"{name!r} is not on the [shell] allow list in loomkin.toml ({allowed})")


def _skip_git_globals(name: str, args: list[Arg]) -> list[Arg]:
    """``git -C . push`` is ``git push`` for the deny list: skip git's global options."""
    if name != "git":
        return args
    i = 0
    while i < len(args) and (args[i].text or "").startswith("-"):
        i += 2 if args[i].text in {"-C", "-c", "--git-dir", "--work-tree", "--namespace"} else 1
    return args[i:]
