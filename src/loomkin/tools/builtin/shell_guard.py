"""The shell tool's guard: refuses destructive commands before they run.

How this works and why: the command line is split into shell words (``shlex`` with the shell's
punctuation), then into simple commands at ``;``, ``&&``, ``||``, ``|``, ``&``, parentheses,
``$(``...``)`` and backticks. Each simple command is checked by name and arguments (``sudo``,
``mkfs``, ``dd of=/dev/...``, ``shutdown``, ``rm -rf /``, ``chmod``/``chown`` on ``/``, files
changed outside the project, ``cd`` out of the project, output redirected out of the
project), while a ``cd`` moves a simulated working directory so later relative paths are
judged from there. A few patterns are easier on the raw text (fork bombs, ``curl | sh``).
Heredoc bodies are data, not commands, and are removed first.

This is a safety net against accidents and confused models, not a sandbox: variables,
``eval`` and interpreters can always hide intent. Write and execute tools also go through the
permission policy.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from loomkin.errors import ToolError

__all__ = ["ShellPolicy", "check_command"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellPolicy:
    """The ``[shell]`` settings of ``loomkin.toml`` as the shell tool uses them."""

    allow: frozenset[str] = field(default_factory=frozenset)
    """When non-empty, only commands whose program name is listed may run."""
    deny: frozenset[str] = field(default_factory=frozenset)
    """Program names (``"docker"``) or word prefixes (``"git push"``) refused; deny wins."""
    default_timeout_s: float = 30.0
    """Timeout when the model gives none."""
    max_timeout_s: float = 600.0
    """Upper bound on the timeout the model may ask for."""
    output_cap: int = 10_000
    """Most characters of output returned (head and tail are kept)."""


_SAFE_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero"})
_OUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<>"})
_IN_REDIRECTS = frozenset({"<", "<<", "<<-", "<<<", "<&"})
_PUNCTUATION = frozenset("();<>|&")
_WRAPPERS = frozenset({"command", "exec", "nohup", "time", "nice", "env", "builtin", "xargs"})
_ESCALATION = frozenset({"sudo", "doas", "su", "pkexec"})
_DISK_TOOLS = frozenset({"mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "parted"})
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_PERMISSION_CMDS = frozenset({"chmod", "chown", "chgrp"})
_MUTATING_ALL_ARGS = frozenset(
    {"rm", "rmdir", "unlink", "shred", "truncate", "touch", "mkdir", "tee", "mv"} | _PERMISSION_CMDS
)
_MUTATING_LAST_ARG = frozenset({"cp", "ln", "install", "rsync"})
_ROOT_OR_HOME = frozenset(
    {"/", "/*", "~", "~/", "~/*", "$HOME", "${HOME}", "$HOME/", "${HOME}/", "$HOME/*"}
)
_FORK_BOMB = re.compile(r"(\S+)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1[^}]*&[^}]*\}")
_PIPE_TO_SHELL = re.compile(
    r"\b(?:curl|wget)\b[^;&\n]*\|\s*(?:sudo\s+)?(?:ba|z|da|k|fi)?sh\b"
    r"|\b(?:ba|z|da|k)?sh\b[^|;&\n]*(?:\$\(|<\(|`)\s*(?:curl|wget)\b"
)
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


@dataclass(slots=True, kw_only=True)
class _Segment:
    words: list[str]
    redirects: list[str]
    piped_from: _Segment | None


def _refuse(reason: str) -> ToolError:
    return ToolError(
        f"Refused to run this command: {reason}. The shell tool blocks destructive commands "
        "and anything acting outside the project; work inside the project directory."
    )


def check_command(command: str, project_root: Path, policy: ShellPolicy) -> None:
    """Refuse ``command`` if it matches a destructive pattern or the allow/deny lists.

    Args:
        command: The shell command line the model asked for.
        project_root: The project directory (the command runs there).
        policy: Allow and deny lists.

    Raises:
        ToolError: the command is refused; the message names the pattern.
    """
    if not command.strip():
        raise ToolError("The command is empty")
    text = _strip_heredocs(command)
    if _FORK_BOMB.search(text):
        raise _refuse("it looks like a fork bomb")
    if _PIPE_TO_SHELL.search(text):
        raise _refuse("it pipes a downloaded script (curl/wget) into a shell")
    segments = _parse(text)
    if segments is None:
        if policy.allow:
            raise _refuse("it cannot be parsed (unbalanced quotes), so the allow list cannot apply")
        return
    if policy.allow and ("$(" in text or "`" in text):
        raise _refuse("command substitution is not allowed while a [shell] allow list is set")
    root = project_root.resolve()
    cwd = root
    for segment in segments:
        name, args = _program(segment.words)
        _check_lists(name, args, policy)
        if name is not None:
            _check_program(name, args, cwd, root)
            if name in {"cd", "pushd"}:
                cwd = _cd(args, cwd, root)
        for target in segment.redirects:
            if _outside(target, cwd, root) and target not in _SAFE_DEVICES:
                raise _refuse(f"it redirects output to {target!r}, outside the project")


def _strip_heredocs(command: str) -> str:
    lines = command.split("\n")
    out: list[str] = []
    pending: list[str] = []
    for line in lines:
        if pending:
            if line.strip() == pending[0]:
                pending.pop(0)
            continue
        out.append(line)
        pending.extend(m.group(2) for m in _HEREDOC.finditer(line))
    return "\n".join(out)


def _parse(text: str) -> list[_Segment] | None:
    prepared = text.replace("\n", " ; ").replace("`", " ; ")
    lexer = shlex.shlex(prepared, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    segments: list[_Segment] = []
    current = _Segment(words=[], redirects=[], piped_from=None)
    expect_target: str | None = None
    for token in tokens:
        if expect_target is not None:
            if expect_target in _OUT_REDIRECTS and not token.isdigit() and token != "-":
                current.redirects.append(token)
            expect_target = None
        elif token in _OUT_REDIRECTS or token in _IN_REDIRECTS:
            expect_target = token
        elif set(token) <= _PUNCTUATION:
            segments.append(current)
            piped = current if "|" in token and "||" not in token else None
            current = _Segment(words=[], redirects=[], piped_from=piped)
        else:
            current.words.append(token)
    segments.append(current)
    return [s for s in segments if s.words or s.redirects]


def _program(words: list[str]) -> tuple[str | None, list[str]]:
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].isidentifier():
            i += 1  # VAR=value prefix
        elif os.path.basename(word) in _WRAPPERS:
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 1
        elif os.path.basename(word) == "timeout":
            i += 1
            while i < len(words) and (words[i].startswith("-") or words[i][:1].isdigit()):
                i += 1
        else:
            return os.path.basename(word), words[i + 1 :]
    return None, []


def _check_lists(name: str | None, args: list[str], policy: ShellPolicy) -> None:
    if name is None:
        return
    words = [name, *args]
    for entry in policy.deny:
        entry_words = entry.split()
        if entry_words and words[: len(entry_words)] == entry_words:
            raise _refuse(f"{entry!r} is on the [shell] deny list in loomkin.toml")
    if policy.allow and name not in policy.allow:
        allowed = ", ".join(sorted(policy.allow))
        raise _refuse(f"{name!r} is not on the [shell] allow list in loomkin.toml ({allowed})")


def _check_program(name: str, args: list[str], cwd: Path, root: Path) -> None:
    operands = _operands(args)
    if name in _ESCALATION:
        raise _refuse(f"privilege escalation ({name}) is not allowed")
    if name.startswith("mkfs") or name in _DISK_TOOLS:
        raise _refuse(f"{name} formats or partitions disks")
    if name == "dd" and any(a.startswith("of=/dev/") and a[3:] not in _SAFE_DEVICES for a in args):
        raise _refuse("dd writing to a device (of=/dev/...)")
    if _is_power_command(name, args):
        raise _refuse("it shuts down or reboots the machine")
    if name == "rm" and _is_recursive(args) and _hits_root_or_home(args, operands):
        raise _refuse("rm -rf of / or of the home directory (~)")
    if name in _PERMISSION_CMDS and any(op in _ROOT_OR_HOME for op in operands):
        raise _refuse(f"{name} on / or on the home directory")
    _check_outside_writes(name, operands, cwd, root)


def _check_outside_writes(name: str, operands: list[str], cwd: Path, root: Path) -> None:
    if name in _MUTATING_ALL_ARGS:
        targets = operands
    elif name in _MUTATING_LAST_ARG:
        targets = operands[-1:]
    else:
        return
    for target in targets:
        if target.startswith("/dev/") and target in _SAFE_DEVICES:
            continue
        if _outside(target, cwd, root):
            raise _refuse(f"{name} would change {target!r}, outside the project")


def _hits_root_or_home(args: list[str], operands: list[str]) -> bool:
    return "--no-preserve-root" in args or any(op in _ROOT_OR_HOME for op in operands)


def _is_power_command(name: str, args: list[str]) -> bool:
    if name in _POWER:
        return True
    if name == "systemctl" and any(a in {*_POWER, "kexec"} for a in args):
        return True
    return name in {"init", "telinit"} and any(a in {"0", "6"} for a in args)


def _is_recursive(args: list[str]) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg == "--recursive" or (
            arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) & {"r", "R"}
        ):
            return True
    return False


def _operands(args: list[str]) -> list[str]:
    out: list[str] = []
    options_done = False
    for arg in args:
        if not options_done and arg == "--":
            options_done = True
        elif options_done or not arg.startswith("-") or arg == "-":
            out.append(arg)
    return out


def _cd(args: list[str], cwd: Path, root: Path) -> Path:
    operands = _operands(args)
    if not operands or operands[0] == "-":
        raise _refuse("cd without a directory (or to '-') leaves the project")
    target = operands[0]
    if _outside(target, cwd, root):
        raise _refuse(f"cd to {target!r} leaves the project")
    return Path(os.path.normpath(cwd / target))


def _outside(path: str, cwd: Path, root: Path) -> bool:
    if path.startswith(("~", "$HOME", "${HOME}")):
        return True
    if path.startswith("$"):
        return False  # unknowable without running the shell; the permission prompt shows it
    candidate = Path(os.path.normpath(path if path.startswith("/") else cwd / path))
    return not candidate.is_relative_to(root)
