"""Programs that write files: which of their arguments name what they change.

Each rule returns the :class:`~loomkin.tools.builtin._guard_opts.Effects` of one run: the
paths it writes (every operand for ``rm``/``touch``/``tee``, the last one or ``-t DIR`` for
``cp``/``install``, ``of=`` for ``dd``, the files of ``sed -i``, the archive of ``tar -c``, the
directory of ``tar -x``...), the targets of the links it creates, and the workdirs it acts in.
Archives and downloads are in :mod:`~loomkin.tools.builtin._guard_archives`. The guard
checks them all against the project root. Programs not listed here either write
nothing the guard could name or are interpreters, whose code the guard does not read (that is
what the sandbox is for).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from loomkin.tools.builtin._guard_archives import ARCHIVE_RULES
from loomkin.tools.builtin._guard_opts import Effects, Opts, Parsed, names, parse_opts
from loomkin.tools.builtin._guard_words import Arg

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["writer_effects"]

_EVERY_OPERAND: dict[str, Opts] = {
    "rm": Opts(),
    "rmdir": Opts(),
    "unlink": Opts(),
    "shred": Opts("ns", frozenset({"iterations", "size", "random-source"})),
    "touch": Opts("drt", frozenset({"date", "reference", "time"})),
    "mkdir": Opts("m", frozenset({"mode", "context"})),
    "mkfifo": Opts("m", frozenset({"mode", "context"})),
    "mknod": Opts("m", frozenset({"mode", "context"})),
    "tee": Opts(),
    "truncate": Opts("sr", frozenset({"size", "reference"})),
    "sponge": Opts(),
    "ed": Opts("p", frozenset({"prompt"})),
    "mv": Opts("tS", frozenset({"target-directory", "suffix"})),
    "vi": Opts("cSuUiTwW", frozenset({"cmd"})),
    "vim": Opts("cSuUiTwW", frozenset({"cmd"})),
    "nvim": Opts("cSuUiW", frozenset({"cmd"})),
    "ex": Opts("cSuUiTwW", frozenset({"cmd"})),
}
_LAST_OPERAND: dict[str, Opts] = {
    "cp": Opts("tS", frozenset({"target-directory", "suffix"})),
    "install": Opts("tmogS", frozenset({"target-directory", "mode", "owner", "group", "suffix"})),
    "ln": Opts("tS", frozenset({"target-directory", "suffix"})),
    "rsync": Opts(
        "BefMT",
        names(
            "rsh rsync-path backup-dir suffix temp-dir partial-dir log-file write-batch "
            "only-write-batch read-batch exclude include exclude-from include-from files-from "
            "filter compare-dest copy-dest link-dest chmod chown timeout contimeout port "
            "password-file out-format log-file-format max-size min-size max-delete bwlimit "
            "iconv usermap groupmap modify-window block-size checksum-choice compress-choice "
            "compress-level skip-compress sockopts outbuf info debug stop-after stop-at"
        ),
    ),
    "scp": Opts("cFiJlPoSD"),
}
# sed commands, found where a command can start (line start, ``;``, braces, an address).
_SED_WRITE = re.compile(r"(?:^|[;{}\s!])\s*[wW]\s+([^;\n}]*)")
_SED_SUBSTITUTE = re.compile(
    r"(?:^|[;{}\s!/$0-9,])s([^\w\s\\])(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1([a-zA-Z0-9]*)(.*)"
)
_SED_EXECUTE = re.compile(r"(?:^|[;{}!])\s*(?:\d+|\$|/[^/]*/)?\s*e(?:\s|;|$)")


def writer_effects(name: str, args: list[Arg]) -> Effects | None:
    """The effects of a program that writes files, or None when ``name`` is not one."""
    if name in _EVERY_OPERAND:
        return _every_operand(name, args)
    if name in _LAST_OPERAND:
        return _last_operand(name, args)
    rule = _RULES.get(name) or ARCHIVE_RULES.get(name)
    return rule(args) if rule is not None else None


def _every_operand(name: str, args: list[Arg]) -> Effects:
    parsed = parse_opts(args, _EVERY_OPERAND[name])
    effects = Effects(writes=[*parsed.operands, *parsed.values("t", "target-directory")])
    effects.moves_links = name == "mv"
    if name in {"vi", "vim", "nvim", "ex"} and (
        parsed.has("c", "cmd")
        or parsed.has("S")
        or any((a.text or "+").startswith("+") for a in args)
    ):
        effects.refusal = f"{name} would run editor commands the guard cannot check"
    return effects


def _last_operand(name: str, args: list[Arg]) -> Effects:
    parsed = parse_opts(args, _LAST_OPERAND[name])
    targets = parsed.values("t", "target-directory")
    sources = parsed.operands if targets or parsed.has("d", "directory") else parsed.operands[:-1]
    if name == "install" and parsed.has("d", "directory"):
        targets = [*targets, *parsed.operands]
    elif not targets:
        targets = parsed.operands[-1:]
    effects = Effects(writes=list(targets), moves_links=_copies_links(name, parsed))
    if name in {"rsync", "scp"}:
        _remote_copy(name, parsed, effects, sources)
    elif _makes_links(name, parsed):
        effects.links = _link_targets(sources, targets)
    return effects


def _copies_links(name: str, parsed: Parsed) -> bool:
    if name in {"ln", "rsync"}:
        return True
    if name != "cp":
        return False
    recursive = parsed.has(long="recursive") or parsed.has(long="archive")
    return recursive or any(parsed.has(short) for short in ("s", "l", "r", "R", "a", "P", "d"))


def _makes_links(name: str, parsed: Parsed) -> bool:
    if name == "ln":
        return True  # symbolic or hard, a link to a file outside lets later writes escape
    return name == "cp" and (parsed.has("s", "symbolic-link") or parsed.has("l", "link"))


def _link_targets(sources: list[Arg], destinations: list[Arg]) -> list[Arg]:
    """Link targets as paths: relative ones are judged from the link's directory too."""
    out: list[Arg] = []
    for source in sources:
        out.append(source)
        if source.text is None or source.text.startswith("/"):
            continue
        for dest in destinations:
            if dest.text is None:
                out.append(dest)
                continue
            for base in (dest.text, os.path.dirname(dest.text)):
                out.append(Arg(text=os.path.join(base, source.text), raw=source.raw))
    return out


def _remote_copy(name: str, parsed: Parsed, effects: Effects, sources: list[Arg]) -> None:
    if (
        parsed.has("e", "rsh")
        or parsed.has("S")
        or parsed.has("F")
        or parsed.has(long="rsync-path")
    ):
        effects.refusal = f"{name} would run a program named in its options"
        return
    if any(
        re.search(r"(?i)(proxy|local|knownhosts)command", v.text or "") for v in parsed.values("o")
    ):
        effects.refusal = f"{name} would run a command from its ssh options"
        return
    for value in [*effects.writes, *sources]:
        text = value.text or ""
        if re.match(r"[^/]*:", text) and not text.startswith(("./", "/")):
            effects.refusal = f"{name} would copy to or from another machine ({value.raw!r})"
            return
    for option in ("backup-dir", "temp-dir", "partial-dir", "log-file", "write-batch"):
        effects.writes.extend(parsed.values(long=option))
    if parsed.has(long="remove-source-files"):
        effects.writes.extend(sources)


def _dd(args: list[Arg]) -> Effects:
    effects = Effects()
    for arg in args:
        if arg.text is None:
            effects.writes.append(arg)
        elif arg.text.startswith("of="):
            effects.writes.append(Arg(text=arg.text[3:], raw=arg.raw))
    return effects


def _permissions(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("", frozenset({"reference", "from"})))
    targets = parsed.operands if parsed.has(long="reference") else parsed.operands[1:]
    effects = Effects(writes=list(targets))
    recursive = parsed.has("R", "recursive")
    if recursive and (parsed.has("L") or parsed.has("H") or parsed.has(long="dereference")):
        effects.refusal = "it would follow symlinks out of the project while recursing"
    return effects


def _sed(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("efl", frozenset({"expression", "file", "line-length"})))
    scripts = parsed.values("e", "expression")
    files = parsed.operands
    if not scripts and not parsed.values("f", "file") and files:
        scripts, files = files[:1], files[1:]
    # -i takes an optional glued suffix (-i.bak); in a cluster (-ni) it is still -i.
    in_place = parsed.has("i", "in-place")
    effects = Effects(writes=list(files) if in_place else [])
    for script in scripts:
        if script.text is None:
            effects.refusal = "its sed script depends on a variable or command output"
            return effects
        writes, runs = sed_script_effects(script.text)
        if runs:
            effects.refusal = "its sed script runs shell commands (the e command or s///e)"
            return effects
        effects.writes.extend(Arg(text=w, raw=script.raw) for w in writes)
    return effects


def sed_script_effects(script: str) -> tuple[list[str], bool]:
    """Files a sed script writes (``w FILE``, ``s///w FILE``) and whether it runs commands."""
    writes: list[str] = []
    runs = False
    for line in script.split("\n"):
        for match in _SED_WRITE.finditer(line):
            writes.append(match.group(1).strip())
        for match in _SED_SUBSTITUTE.finditer(line):
            flags, rest = match.group(2), match.group(3)
            if "e" in flags:
                runs = True
            if "w" in flags:
                writes.append(rest.strip())
        if _SED_EXECUTE.search(line):
            runs = True
    return [w for w in writes if w], runs


def _sort(args: list[Arg]) -> Effects:
    parsed = parse_opts(
        args,
        Opts(
            "ojkStT",
            frozenset(
                {
                    "output",
                    "key",
                    "field-separator",
                    "buffer-size",
                    "temporary-directory",
                    "parallel",
                    "files0-from",
                    "compress-program",
                }
            ),
        ),
    )
    effects = Effects(
        writes=[*parsed.values("o", "output"), *parsed.values("T", "temporary-directory")]
    )
    if parsed.has(long="compress-program"):
        effects.refusal = "sort --compress-program would run a program"
    return effects


def _uniq(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("fsw", frozenset({"skip-fields", "skip-chars", "check-chars"})))
    return Effects(writes=parsed.operands[1:2])


def _split(args: list[Arg]) -> Effects:
    parsed = parse_opts(
        args,
        Opts(
            "abCln",
            frozenset(
                {
                    "suffix-length",
                    "additional-suffix",
                    "bytes",
                    "line-bytes",
                    "lines",
                    "number",
                    "filter",
                    "separator",
                }
            ),
        ),
    )
    return Effects(writes=parsed.operands[1:2], scripts=parsed.values(long="filter"))


def _csplit(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("bfn", frozenset({"suffix-format", "prefix", "digits"})))
    return Effects(writes=parsed.values("f", "prefix"))


def _patch(args: list[Arg]) -> Effects:
    parsed = parse_opts(
        args,
        Opts(
            "BdDFgioprVYzx",
            names(
                "prefix directory ifdef fuzz get input output strip reject-file version-control "
                "basename-prefix suffix debug"
            ),
        ),
    )
    return Effects(
        writes=[
            *parsed.values("o", "output"),
            *parsed.values("r", "reject-file"),
            *parsed.values("B", "prefix"),
            *parsed.values("Y", "basename-prefix"),
            *parsed.operands[:1],
        ],
        workdirs=parsed.values("d", "directory"),
    )


def _mktemp(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("p", frozenset({"tmpdir", "suffix"})))
    effects = Effects(workdirs=parsed.values("p", "tmpdir"))
    if not parsed.has("t") and not parsed.has("p", "tmpdir"):
        effects.writes.extend(parsed.operands)
    return effects


def _in_place_interpreter(args: list[Arg]) -> Effects:
    """``perl -pi -e CODE FILES`` / ``ruby -i``: the code is opaque, the files are written."""
    parsed = parse_opts(args, Opts("eEIlMmxCd", frozenset()))
    if any(name == "-i" for name, _ in parsed.options):
        return Effects(writes=parsed.operands)
    return Effects()


def _awk(args: list[Arg]) -> Effects:
    parsed = parse_opts(
        args, Opts("fvFiE", frozenset({"file", "assign", "field-separator", "include", "exec"}))
    )
    effects = Effects()
    program = parsed.operands[:1] if not parsed.values("f", "file") else []
    for source in program:
        text = source.text
        if text is None or re.search(r"\bsystem\s*\(|\|\s*(?:getline|\")|\|&", text):
            effects.refusal = "its awk program runs commands or cannot be read"
            return effects
        effects.writes.extend(
            Arg(text=m.group(1), raw=source.raw) for m in re.finditer(r'>>?\s*"([^"]*)"', text)
        )
    if any((v.text or "") == "inplace" for v in parsed.values("i", "include")):
        effects.writes.extend(parsed.operands[len(program) :])
    return effects


_RULES: dict[str, Callable[[list[Arg]], Effects]] = {
    "sort": _sort,
    "uniq": _uniq,
    "split": _split,
    "csplit": _csplit,
    "patch": _patch,
    "mktemp": _mktemp,
    "perl": _in_place_interpreter,
    "ruby": _in_place_interpreter,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "dd": _dd,
    "chmod": _permissions,
    "chown": _permissions,
    "chgrp": _permissions,
    "sed": _sed,
}
