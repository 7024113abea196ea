"""Archives, compressors and downloads: which of their arguments name what they change.

``tar -c``/``zip`` write the archive, ``tar -x``/``unzip`` write into a directory (``-C``,
``-d`` or the current one), a compressor replaces each file it is given unless it writes to
standard output, and ``curl``/``wget`` write the files their output options name. Options
that make these programs run another program (``tar --to-command``, ``zip -TT``) are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.tools.builtin._guard_opts import Effects, Opts, names, parse_opts
from loomkin.tools.builtin._guard_words import Arg

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ARCHIVE_RULES"]

_COMPRESSORS = names(
    "gzip gunzip bzip2 bunzip2 xz unxz lzma unlzma zstd unzstd zstdmt lz4 lz4c pigz unpigz "
    "compress uncompress lzip"
)
_TAR = Opts(
    "fCTXbgKNLVHI",
    names(
        "file directory files-from exclude-from blocking-factor listed-incremental "
        "starting-file newer after-date tape-length label info-script new-volume-script "
        "use-compress-program to-command rsh-command rmt-command checkpoint-action "
        "exclude transform xform owner group mode mtime format suffix backup"
    ),
)
_TAR_WRITES_ARCHIVE = frozenset("crAu")
_TAR_RUNS = ("to-command", "info-script", "new-volume-script", "rsh-command", "rmt-command")


def _tar(args: list[Arg]) -> Effects:
    if args and args[0].text and not args[0].text.startswith("-"):
        args = [Arg(text="-" + args[0].text, raw=args[0].raw), *args[1:]]  # old style: tar cf
    parsed = parse_opts(args, _TAR)
    modes = {name[1] for name, _ in parsed.options if len(name) == 2}
    longs = {name for name, _ in parsed.options if name.startswith("--")}
    effects = Effects(scripts=parsed.values("I", "use-compress-program"))
    if (
        any(parsed.has(long=option) for option in _TAR_RUNS)
        or parsed.has("F")
        or any("exec" in (v.text or "exec") for v in parsed.values(long="checkpoint-action"))
    ):
        effects.refusal = "tar would run a command named in its options"
    archives = parsed.values("f", "file")
    creating = bool(modes & _TAR_WRITES_ARCHIVE) or bool(
        longs & {"--create", "--append", "--update", "--catenate", "--concatenate", "--delete"}
    )
    if creating:
        effects.writes.extend(archives)
    elif "x" in modes or longs & {"--extract", "--get"}:
        effects.writes.extend(parsed.values("C", "directory") or [Arg.known(".")])
        effects.moves_links = True
        if parsed.has("P", "absolute-names"):
            effects.refusal = "tar -P would extract absolute paths anywhere on the machine"
    effects.writes.extend(parsed.values("g", "listed-incremental"))
    return effects


def _compressor(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("SoTFCMDL", frozenset({"suffix", "output", "threads"})))
    if parsed.has("c", "stdout") or parsed.has(long="to-stdout") or parsed.has("t", "test"):
        return Effects(writes=parsed.values("o", "output"))
    if parsed.has("l", "list"):
        return Effects()
    return Effects(writes=[*parsed.operands, *parsed.values("o", "output")])


def _unzip(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, Opts("dP"))
    if parsed.has("l") or parsed.has("p") or parsed.has("t") or parsed.has("Z"):
        return Effects()
    return Effects(writes=parsed.values("d") or [Arg.known(".")], moves_links=True)


def _zip(args: list[Arg]) -> Effects:
    parsed = parse_opts(
        args, Opts("bOtnixP", frozenset({"output-file", "temp-path", "unzip-command"}))
    )
    effects = Effects(
        writes=[
            *parsed.operands[:1],
            *parsed.values("O", "output-file"),
            *parsed.values("b", "temp-path"),
        ]
    )
    if parsed.has(long="unzip-command") or any((a.text or "") == "-TT" for a in args):
        effects.refusal = "zip -TT would run a command"
    return effects


_CURL_WRITES = ("trace", "trace-ascii", "stderr", "libcurl", "etag-save", "hsts", "alt-svc")
_CURL = Opts(
    "oDcKuHdXAeEFTwmyYzbCrxUQt",
    names(
        "output dump-header cookie-jar output-dir config user header data request user-agent "
        "referer cert form upload-file write-out max-time cookie range proxy url data-binary "
        "data-raw data-urlencode"
    )
    | frozenset(_CURL_WRITES),
)


def _curl(args: list[Arg]) -> Effects:
    parsed = parse_opts(args, _CURL)
    effects = Effects(
        writes=[
            *parsed.values("o", "output"),
            *parsed.values("D", "dump-header"),
            *parsed.values("c", "cookie-jar"),
        ],
        workdirs=parsed.values(long="output-dir"),
    )
    for option in _CURL_WRITES:
        effects.writes.extend(parsed.values(long=option))
    if parsed.has("K", "config"):
        effects.refusal = "curl -K reads options (output files included) the guard cannot check"
    return effects


def _wget(args: list[Arg]) -> Effects:
    parsed = parse_opts(
        args,
        Opts(
            "OoaPeiBUtTwQlAR",
            names(
                "output-document output-file append-output directory-prefix execute input-file "
                "base user-agent tries timeout wait quota level accept reject save-cookies "
                "load-cookies header"
            ),
        ),
    )
    return Effects(
        writes=[
            *parsed.values("O", "output-document"),
            *parsed.values("o", "output-file"),
            *parsed.values("a", "append-output"),
            *parsed.values(long="save-cookies"),
        ],
        workdirs=parsed.values("P", "directory-prefix"),
    )


ARCHIVE_RULES: dict[str, Callable[[list[Arg]], Effects]] = {
    "tar": _tar,
    "unzip": _unzip,
    "zip": _zip,
    "curl": _curl,
    "wget": _wget,
    **dict.fromkeys(_COMPRESSORS, _compressor),
}
"""Rules by program name."""
