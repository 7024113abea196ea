"""What one program run does: wrappers unwrapped, shells followed, dangerous programs refused.

How this works and why: a wrapper (``nice``, ``env``, ``timeout``, ``xargs``, ``nohup``,
``setsid``, ``stdbuf``, ``command``, ``builtin``, ``exec``, ``time``, ``ionice``, ``chrt``,
``taskset``, ``flock``, ``busybox``...) runs another command, so its own options are parsed
the way the program parses them and the inner command is reported in ``Effects.runs``; the
guard then checks it like any other, lists included. Shells and ``eval``/``trap``/``alias`` run
text, reported in ``Effects.scripts`` for the guard to parse. ``find -exec`` runs a command once
per start path, ``xargs`` runs one whose last arguments come from standard input (unknown).
Privilege escalation, disk formatting, power commands, and programs that start something
outliving the call or leaving its namespaces are refused outright. Everything else goes to the
writer rules in :mod:`~loomkin.tools.builtin._guard_writers`.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from loomkin.tools.builtin._guard_opts import Effects, Inner, Opts, names, parse_opts
from loomkin.tools.builtin._guard_tools import TOOL_RULES
from loomkin.tools.builtin._guard_words import SAFE_DEVICES, Arg
from loomkin.tools.builtin._guard_writers import writer_effects

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SHELLS", "program_effects"]

SHELLS = names("sh bash dash zsh ksh mksh ash posh yash rbash")
"""Programs that run shell source."""

_ESCALATION = names("sudo doas su pkexec runuser sg newgrp run0")
_DISK_TOOLS = names("mke2fs mkswap wipefs fdisk sfdisk parted losetup cryptsetup")
_POWER = names("shutdown reboot halt poweroff")
_ESCAPES = names(
    "systemd-run at batch crontab tmux screen nsenter unshare chroot mount umount pivot_root "
    "capsh setpriv daemonize start-stop-daemon dtach abduco"
)
_WRAPPERS: dict[str, Opts] = {
    "nice": Opts("n", names("adjustment"), stop_at_operand=True),
    "nohup": Opts(stop_at_operand=True),
    "setsid": Opts(stop_at_operand=True),
    "stdbuf": Opts("ioe", names("input output error"), stop_at_operand=True),
    "builtin": Opts(stop_at_operand=True),
    "exec": Opts("a", stop_at_operand=True),
    "command": Opts(stop_at_operand=True),
    "time": Opts("fo", names("format output"), stop_at_operand=True),
    "ionice": Opts("cn", names("class classdata"), stop_at_operand=True),
    "chrt": Opts("TPD", names("sched-runtime sched-period sched-deadline"), stop_at_operand=True),
    "taskset": Opts(stop_at_operand=True),
    "timeout": Opts("sk", names("signal kill-after"), stop_at_operand=True),
    "unbuffer": Opts(stop_at_operand=True),
    "chronic": Opts(stop_at_operand=True),
    "busybox": Opts(stop_at_operand=True),
    "toybox": Opts(stop_at_operand=True),
    "strace": Opts("oepsuEabIOPSX", names("output"), stop_at_operand=True),
    "ltrace": Opts("oepsuEabnIOS", names("output"), stop_at_operand=True),
}
_FIRST_OPERAND_IS_NOT_A_COMMAND = frozenset({"timeout", "chrt", "taskset"})


def program_effects(name: str, args: list[Arg]) -> Effects:
    """What running ``name`` with ``args`` does, as far as the guard can tell."""
    refusal = _refusal(name, args)
    if refusal is not None:
        return Effects(refusal=refusal)
    if name in _WRAPPERS:
        return _wrapper(name, args)
    if name in SHELLS:
        return _shell(args)
    rule = _RULES.get(name)
    if rule is not None:
        return rule(args)
    return writer_effects(name, args) or Effects()


def _refusal(name: str, args: list[Arg]) -> str | None:
    texts = [a.text for a in args]
    if name in _ESCALATION:
        return f"privilege escalation ({name}) is not allowed"
    if name.startswith("mkfs") or name in _DISK_TOOLS:
        return f"{name} formats or partitions disks"
    if (
        name in _POWER
        or (name == "systemctl" and any(t in {*_POWER, "kexec"} for t in texts))
        or (name in {"init", "telinit"} and any(t in {"0", "6"} for t in texts))
    ):
        return "it shuts down or reboots the machine"
    if name in _ESCAPES:
        return f"{name} starts something that outlives the command or leaves its confinement"
    if name == "dd" and any(
        t and t.startswith("of=/dev/") and t[3:] not in SAFE_DEVICES for t in texts
    ):
        return "dd writing to a device (of=/dev/...)"
    if name == "gdb" and any(
        t in {"-p", "--pid", "attach"} or (t or "").startswith("--pid=") for t in texts
    ):
        return "gdb would attach to another process (and read its secrets)"
    if name == "ps" and any(t and not t.startswith("-") and "e" in t for t in texts):
        return "ps e prints the environment (and secrets) of other processes"
    if name == "kill" and _kills_everything(texts):
        return "kill -1 would kill every process of this user"
    return None


def _kills_everything(texts: list[str | None]) -> bool:
    pids = texts
    if pids[:1] in (["-s"], ["-n"]):
        pids = pids[2:]
    elif pids and pids[0] and pids[0].startswith("-") and pids[0] != "--":
        pids = pids[1:]  # -9, -KILL, and -1 as a signal number
    return any(t in {"-1", "1"} for t in pids if t != "--")


def _wrapper(name: str, args: list[Arg]) -> Effects:
    parsed = parse_opts(args, _WRAPPERS[name])
    command = parsed.operands
    pid_mode = parsed.has("p") and name in {"chrt", "taskset", "ionice"}
    if pid_mode or (name == "command" and (parsed.has("v") or parsed.has("V"))):
        return Effects()  # acts on a running process, or only prints where a program is
    if name in _FIRST_OPERAND_IS_NOT_A_COMMAND:
        command = command[1:]  # timeout's duration, chrt's priority, taskset's mask
    effects = Effects(runs=[Inner(command)] if command else [])
    if name in {"strace", "ltrace"} and parsed.has("p"):
        effects.refusal = f"{name} -p would attach to another process"
    if name in {"time", "strace", "ltrace"}:
        effects.writes.extend(parsed.values("o", "output"))
    return effects


def _shell(args: list[Arg]) -> Effects:
    rest = list(args)
    while rest and (rest[0].text or "").startswith("+"):
        rest = rest[2:] if rest[0].text in {"+o", "+O"} else rest[1:]
    parsed = parse_opts(rest, Opts("oO", names("rcfile init-file"), stop_at_operand=True))
    if parsed.has("c"):
        if not parsed.operands:
            return Effects(refusal="sh -c needs a command string")
        return Effects(scripts=parsed.operands[:1])
    if parsed.has("s") or not parsed.operands:
        return Effects(script_from_stdin=True)
    return _script_file(parsed.operands[0])


def _script_file(script: Arg) -> Effects:
    text = script.text
    if text is None or text.startswith(("/dev/", "/proc/")):
        return Effects(refusal=f"it runs a script from {script.raw!r}, which the guard cannot read")
    return Effects()  # a script file: opaque, like any program (the sandbox contains it)


def _flock(args: list[Arg]) -> Effects:
    spec = Opts("wEc", names("timeout wait conflict-exit-code command"), stop_at_operand=True)
    parsed = parse_opts(args, spec)
    lock, command = parsed.operands[:1], parsed.operands[1:]
    effects = Effects(writes=[a for a in lock if not (a.text or "").isdigit()])
    effects.scripts.extend(parsed.values("c", "command"))
    if command:
        effects.runs.append(Inner(command))
    return effects


def _watch(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("nq", names("interval equexit"), stop_at_operand=True))
    if parsed.has("x", "exec"):
        return Effects(runs=[Inner(parsed.operands)] if parsed.operands else [])
    if any(a.text is None for a in parsed.operands):
        return Effects(refusal="watch of a variable or command output cannot be checked")
    return Effects(scripts=[Arg.known(" ".join(a.text or "" for a in parsed.operands))])


def _eval(args: list[Arg]) -> Effects:
    if any(a.text is None for a in args):
        return Effects(refusal="eval of a variable or command output cannot be checked")
    return Effects(scripts=[Arg.known(" ".join(a.text or "" for a in args))])


def _source(args: list[Arg]) -> Effects:
    return _script_file(args[0]) if args else Effects()


def _trap(args: list[Arg]) -> Effects:
    rest = args[1:] if args and args[0].text == "--" else args
    if len(rest) < 2 or (rest[0].text or "").startswith("-"):
        return Effects()  # trap -l, trap -p, trap - SIG: nothing runs
    return Effects(scripts=rest[:1])


def _alias(args: list[Arg]) -> Effects:
    effects = Effects()
    for arg in args:
        if arg.text is None:
            effects.refusal = "an alias defined from a variable cannot be checked"
        elif "=" in arg.text:
            effects.scripts.append(Arg(text=arg.text.split("=", 1)[1], raw=arg.raw))
    return effects


def _env(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("uCS", names("unset chdir split-string"), stop_at_operand=True))
    command = parsed.operands
    while command and command[0].text and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", command[0].text):
        command = command[1:]
    cwd = next(iter(parsed.values("C", "chdir")), None)
    split = parsed.values("S", "split-string")
    if split:
        if any(a.text is None for a in [*split, *command]):
            return Effects(refusal="env -S with a variable or command output cannot be checked")
        line = " ".join(
            [*(a.text or "" for a in split), *(shlex.quote(a.text or "") for a in command)]
        )
        shell = [Arg.known("sh"), Arg.known("-c"), Arg.known(line)]
        return Effects(runs=[Inner(shell, cwd=cwd)])
    return Effects(runs=[Inner(command, cwd=cwd)] if command else [])


def _xargs(args: list[Arg]) -> Effects:
    spec = Opts(
        "adEILnPs",
        names(
            "arg-file delimiter eof replace max-lines max-args max-procs max-chars process-slot-var"
        ),
        stop_at_operand=True,
    )
    parsed = parse_opts(args, spec)
    command = parsed.operands or [Arg.known("echo")]
    replace = next(iter(parsed.values("I")), None)
    if replace is None and (parsed.has("i") or parsed.has(long="replace")):
        replace = Arg.known("{}")
    stdin = Arg(text=None, raw="<standard input>")
    if replace is not None and replace.text:
        marker = replace.text
        inner = [stdin if a.text is None or marker in a.text else a for a in command]
    else:
        inner = [*command, stdin]  # the names come from standard input: unknown here
    return Effects(runs=[Inner(inner)])


def _find(args: list[Arg]) -> Effects:
    i = 0
    follow = False
    while i < len(args):
        text = args[i].text or ""
        if text in {"-H", "-L", "-P"}:
            follow = follow or text == "-L"
        elif text == "-D":
            i += 1  # -D debugopts
        elif not text.startswith("-O"):
            break
        i += 1
    starts: list[Arg] = []
    while i < len(args) and not (args[i].text or "-").startswith(("-", "(", "!", ")", ",")):
        starts.append(args[i])
        i += 1
    effects = Effects()
    follow = _find_expression(args[i:], starts or [Arg.known(".")], effects) or follow
    if follow and (effects.writes or effects.runs):
        effects.refusal = "find -L follows symlinks out of the project while changing files"
    return effects


def _find_expression(expression: list[Arg], starts: list[Arg], effects: Effects) -> bool:
    """Fill ``effects`` from find's expression; True when it follows symlinks."""
    follow = False
    j = 0
    while j < len(expression):
        word = expression[j].text
        if word in {"-exec", "-execdir", "-ok", "-okdir"}:
            end = next(
                (k for k in range(j + 1, len(expression)) if expression[k].text in {";", "+"}),
                len(expression),
            )
            in_dir = word in {"-execdir", "-okdir"}
            for start in starts:
                # {} stands for a path below the start (or ./name in the match's directory).
                found = Arg(text=None, raw="{}")
                if start.text is not None:
                    below = "./_" if in_dir else start.text.rstrip("/") + "/_"
                    found = Arg(text=below, raw=f"{{}} (a path under {start.raw})")
                command = [
                    found if a.text is not None and "{}" in a.text else a
                    for a in expression[j + 1 : end]
                ]
                effects.runs.append(Inner(command, cwd=start if in_dir else None))
            j = end
        elif word == "-delete":
            effects.writes.extend(starts)
        elif word in {"-fprint", "-fprint0", "-fls", "-fprintf"} and j + 1 < len(expression):
            effects.writes.append(expression[j + 1])
        follow = follow or word == "-follow"
        j += 1
    return follow


_RULES: dict[str, Callable[[list[Arg]], Effects]] = {
    "env": _env,
    "flock": _flock,
    "watch": _watch,
    "xargs": _xargs,
    "find": _find,
    "eval": _eval,
    "source": _source,
    ".": _source,
    "trap": _trap,
    "alias": _alias,
    **TOOL_RULES,
}
