"""Development tools that can act outside the project: git, make, containers, ssh.

``git -C``/``--git-dir``/``--work-tree`` and ``make -C`` choose where they act, so those
directories must be inside the project. git configuration given on the command line (``-c``,
``git config``, ``clone -c``) is refused unless its key is one that cannot run a program:
aliases, pagers, editors, hooks, ``core.fsmonitor``, filters and helpers all can. Containers
mounting host paths and ssh options that run local commands are refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from loomkin.tools.builtin._guard_opts import Effects, Opts, names, parse_opts
from loomkin.tools.builtin._guard_words import Arg

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TOOL_RULES"]

# git -c keys that cannot run a program: anything else (aliases, pagers, hooks, fsmonitor,
# filters, helpers) is refused, since its value would run outside the guard's view.
_SAFE_GIT_CONFIG = re.compile(
    r"(?i)(user|color|advice|init|log|status|column|i18n|pretty|format|pull|push|fetch|"
    r"merge\.conflictstyle|diff\.(renames|algorithm|noprefix|mnemonicprefix|context|"
    r"indentheuristic|colormoved)|core\.(quotepath|autocrlf|safecrlf|filemode|ignorecase|"
    r"abbrev|whitespace)|commit\.(gpgsign|verbose|cleanup)|rebase\.autosquash)(\.|$)"
)
_GIT_VALUED = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--config-env", "--namespace"})
_GIT_SUB = Opts(
    "oufc",
    names("output output-directory upload-pack receive-pack template separate-git-dir config"),
)
_MAKE = Opts(
    "CfIjlWoe",
    names(
        "directory file makefile include-dir jobs load-average what-if new-file assume-new "
        "old-file assume-old"
    ),
)


def _git(args: list[Arg]) -> Effects:
    effects = Effects()
    i = 0
    while i < len(args) and (args[i].text or "").startswith("-"):
        i = _git_global_option(args, i, effects)
    sub = args[i].text if i < len(args) else None
    rest = args[i + 1 :]
    parsed = parse_opts(rest, _GIT_SUB)
    for option in ("output-directory", "separate-git-dir"):
        effects.writes.extend(parsed.values(long=option))
    effects.writes.extend(parsed.values("o", "output"))
    if any(parsed.has(long=option) for option in ("upload-pack", "receive-pack", "exec")):
        effects.refusal = "git would run a program named in its options"
    if sub == "config":
        effects.refusal = effects.refusal or _git_config(parsed.operands, rest)
    elif sub == "clone" and not all(_safe_config(v) for v in parsed.values("c", "config")):
        effects.refusal = "git clone -c could make git run a program"
    first = parsed.operands[0].text if parsed.operands else None
    if sub in {"init", "clone"} and parsed.operands:
        effects.writes.append(parsed.operands[-1])
    elif (sub, first) in {("worktree", "add"), ("bundle", "create")}:
        effects.writes.extend(parsed.operands[1:2])
    return effects


def _git_global_option(args: list[Arg], i: int, effects: Effects) -> int:
    """Check the global option at ``args[i]``; return the index after it (and its value)."""
    text = args[i].text or ""
    name, eq, glued = text.partition("=")
    if text in _GIT_VALUED:
        value = args[i + 1] if i + 1 < len(args) else Arg(text=None, raw=text)
        i += 1
    else:
        value = Arg(text=glued if eq else None, raw=args[i].raw)
    if name in {"-C", "--git-dir", "--work-tree"}:
        effects.workdirs.append(value)
    elif name in {"-c", "--config-env"} and not _safe_config(value):
        effects.refusal = f"git {name} {value.raw} could make git run a program"
    elif name == "--exec-path" and eq:
        effects.refusal = "git --exec-path would run programs from another directory"
    return i + 1


def _safe_config(value: Arg) -> bool:
    return value.text is not None and bool(_SAFE_GIT_CONFIG.match(value.text))


def _git_config(operands: list[Arg], rest: list[Arg]) -> str | None:
    texts = [a.text or "" for a in rest]
    if any(t in {"--global", "--system"} or t.startswith(("--file", "-f")) for t in texts):
        return "git config would change a configuration file outside the repository"
    reading = any(t in {"--get", "--get-all", "--get-regexp", "-l", "--list"} for t in texts)
    if not reading and len(operands) >= 2 and not _safe_config(operands[0]):
        return f"git config {operands[0].raw} could make git run a program"
    return None


def _make(args: list[Arg]) -> Effects:
    return Effects(workdirs=parse_opts(args, _MAKE).values("C", "directory"))


def _containers(args: list[Arg]) -> Effects:
    for arg in args:
        text = arg.text or ""
        if text == "cp" or re.match(
            r"--?(v$|volume|mount|privileged|pid=host|device|cap-add|userns=host)", text
        ):
            return Effects(
                refusal=f"it would give a container access to this machine ({arg.raw!r})"
            )
    return Effects()


def _ssh(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("bcDEeFIiJLlmOoPpQRSWw"))
    options = " ".join(v.text or "" for v in parsed.values("o"))
    if parsed.has("F") or re.search(r"(?i)(proxy|local|knownhosts)command|match\s+exec", options):
        return Effects(refusal="ssh would run a local command from its options")
    return Effects()


TOOL_RULES: dict[str, Callable[[list[Arg]], Effects]] = {
    "git": _git,
    "make": _make,
    "gmake": _make,
    "docker": _containers,
    "podman": _containers,
    "nerdctl": _containers,
    "ssh": _ssh,
}
"""Rules by program name."""
