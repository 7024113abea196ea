"""``git``: status, diff, log, add and commit in the project's repository.

Git runs without a shell (``git --no-pager <operation> <args>``) in the project root, in the
same sandbox as the shell (with the repository's ``.git`` writable, no network, and an
environment reduced to an allowlist plus git's identity variables). The arguments are
checked first: options that point git somewhere else or run other programs (``-C``,
``--git-dir``, ``--work-tree``, ``-c``/``--config``/``--config-env``, ``--exec-path``,
``--upload-pack``, ``--receive-pack``, ``--output``, ``--ext-diff``), interactive options
(``-p``, ``-i``, ``-e``) and paths outside the project are refused, whether a path is a
separate argument or glued to an option (``-F/abs``, ``--file=/abs``, ``-L1,2:/abs``), and
``commit`` needs a message (``-m``).

``add`` never stages a nested repository (a gitlink): git looks into a gitlink's repository on
every ``status``, running whatever its own configuration says (``core.fsmonitor``), and that
configuration is something a command in the project could have written. Failures raise
:class:`~loomkin.errors.ToolError` with git's output and exit code.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field

from loomkin.errors import PathEscapeError, ToolError
from loomkin.tools.base import ToolArgs, ToolContext, tool
from loomkin.tools.builtin.sandbox import SandboxRun, default_sandbox
from loomkin.tools.builtin.shell import format_process_result
from loomkin.tools.paths import resolve_in_project

__all__ = ["GIT_OUTPUT_CAP", "GIT_TIMEOUT_S", "GitArgs", "git"]

GIT_TIMEOUT_S = 60.0
GIT_OUTPUT_CAP = 10_000

GitOperation = Literal["status", "diff", "log", "add", "commit"]

_REFUSED_OPTIONS = {
    "-C": "runs git in another directory",
    "-c": "sets git configuration (which can run programs)",
    "--config": "sets git configuration (which can run programs)",
    "--config-env": "sets git configuration (which can run programs)",
    "--upload-pack": "runs another program",
    "--receive-pack": "runs another program",
    "--exec": "runs another program",
    "--git-dir": "points git at another repository",
    "--work-tree": "points git at another working tree",
    "--exec-path": "changes where git finds its programs",
    "--namespace": "changes the ref namespace",
    "--output": "writes output to a file",
    "--ext-diff": "runs an external diff program",
    "--template": "reads a template file",
    "--pathspec-from-file": "reads paths from a file",
}
_INTERACTIVE = {
    "add": frozenset({"-p", "--patch", "-i", "--interactive", "-e", "--edit"}),
    "commit": frozenset({"-p", "--patch", "--interactive", "-e", "--edit"}),
}


class GitArgs(ToolArgs):
    """Arguments of ``git``."""

    operation: GitOperation = Field(description="The git command to run.")
    args: list[str] = Field(
        default_factory=list,
        description="Arguments after the operation, e.g. ['-m', 'Fix parser'] for commit, "
        "['--stat'] for diff, ['-n', '20', '--oneline'] for log, ['src/a.py'] for add.",
    )


def _git_target(args: GitArgs, ctx: ToolContext) -> str:
    return " ".join(["git", args.operation, *args.args])


def _check_option(operation: str, arg: str) -> None:
    name = arg.split("=", 1)[0]
    reason = _REFUSED_OPTIONS.get(name)
    if reason is None and name.startswith("--"):
        # git accepts unambiguous prefixes of long options (--git-d, --out).
        reason = next(
            (
                why
                for opt, why in _REFUSED_OPTIONS.items()
                if opt.startswith(name) and len(name) > 4
            ),
            None,
        )
    if reason is not None:
        raise ToolError(f"git option {name!r} is not allowed: it {reason}")
    if arg in _INTERACTIVE.get(operation, frozenset()):
        raise ToolError(f"git {operation} {arg} is interactive and cannot run here")


# Git identity and configuration variables the git tool passes (never secrets).
_GIT_PASSTHROUGH = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "EMAIL",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CEILING_DIRECTORIES",
)
_PIECES = re.compile(r"[=:,]")
_PATHSPEC_MAGIC = re.compile(r"^:(?:/|\([^)]*\))")


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "~")) or ".." in value.replace("\\", "/").split("/")


def _path_pieces(arg: str) -> list[str]:
    """The parts of one argument that may name a file: glued values split at ``=:,``."""
    return [p for p in _PIECES.split(_PATHSPEC_MAGIC.sub("", arg)) if _looks_like_path(p)]


def _check_path(ctx: ToolContext, value: str) -> None:
    if value.startswith("~"):
        raise ToolError(f"git argument {value!r} is outside the project ('~' is not expanded)")
    try:
        resolve_in_project(ctx.project_root, value)
    except PathEscapeError as exc:
        raise ToolError(f"git argument refused: {exc}") from None


def _validate(args: GitArgs, ctx: ToolContext) -> None:
    message_next = False
    for arg in args.args:
        if "\0" in arg:
            raise ToolError("git arguments cannot contain NUL bytes")
        if message_next:
            message_next = False  # a commit message is text, not a path
        elif arg.startswith("-") and arg != "-":
            _check_option(args.operation, arg)
            # A value glued to a long option (--file=/abs) or a short one (-F/abs, -O/abs).
            glued = arg.split("=", 1)[1] if "=" in arg else (arg[2:] if arg[1] != "-" else "")
            if args.operation == "commit" and (arg == "--message" or _is_message_cluster(arg)):
                message_next = arg == "--message" or arg.endswith("m")
                continue
            if args.operation == "commit" and arg.startswith("--message="):
                continue
            for piece in _path_pieces(glued):
                _check_path(ctx, piece)
        elif _looks_like_path(_PATHSPEC_MAGIC.sub("", arg)):
            _check_path(ctx, _PATHSPEC_MAGIC.sub("", arg) or ".")
    if args.operation == "commit" and not _has_message(args.args):
        raise ToolError("git commit needs a message: pass args like ['-m', 'Describe the change']")


def _is_message_cluster(arg: str) -> bool:
    """``-am`` (message next) or ``-amText``: a short-option cluster ending in ``-m``."""
    return (
        not arg.startswith("--")
        and "m" in arg[1:]
        and set(arg[1 : arg.index("m")]) <= set("asvnqu")
    )


def _has_message(args: list[str]) -> bool:
    for i, arg in enumerate(args):
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg == "--message" and following.strip():
            return True
        if arg.startswith("--message=") and arg.split("=", 1)[1].strip():
            return True
        if arg.startswith("-") and not arg.startswith("--") and "m" in arg:
            # A short-option cluster: -m MSG, -mMSG, -am MSG.
            rest = arg[arg.index("m") + 1 :]
            if rest.strip() or following.strip():
                return True
    return False


_READ_ONLY: frozenset[str] = frozenset({"status", "diff", "log"})
"""Operations that change nothing (``add`` and ``commit`` do)."""


def _read_only(args: GitArgs) -> bool:
    """A read-only git call may be run again after a crash cut it off."""
    return args.operation in _READ_ONLY


@tool(name="git", category="execute", args=GitArgs, target=_git_target, idempotent=_read_only)
async def git(args: GitArgs, ctx: ToolContext, deps: object) -> str:
    """Run git status, diff, log, add or commit in the project repository.

    Returns git's output and exit code. Commit needs ['-m', 'message'] in args.
    """
    _validate(args, ctx)
    run = await _run_git(ctx, [args.operation, *args.args])
    text = format_process_result(run.result, timeout_s=GIT_TIMEOUT_S, notice=run.notice)
    if args.operation == "add":
        await _unstage_new_gitlinks(ctx)
    return text


async def _run_git(ctx: ToolContext, git_args: list[str]) -> SandboxRun:
    return await default_sandbox().run(
        project_root=ctx.project_root,
        timeout_s=GIT_TIMEOUT_S,
        output_cap=GIT_OUTPUT_CAP,
        argv=["git", "--no-pager", "-c", "color.ui=false", *git_args],
        writable_git=True,
        home=os.environ.get("HOME", "/"),  # ~/.gitconfig holds the user's identity
        passthrough=_GIT_PASSTHROUGH,
    )


async def _unstage_new_gitlinks(ctx: ToolContext) -> None:
    """Undo the staging of nested repositories; raise a ToolError naming them.

    Raises:
        ToolError: ``add`` staged one or more nested repositories (now unstaged again).
    """
    run = await _run_git(ctx, ["diff", "--cached", "--raw", "--no-renames", "-z"])
    fields = run.result.output.split("\0")
    added = [
        path
        for status, path in zip(fields[::2], fields[1::2], strict=False)
        if status.split(" ")[:2] == [":000000", "160000"]
    ]
    if not added:
        return
    # --cached -f drops the index entries only; the nested repository's files stay.
    undo = await _run_git(ctx, ["rm", "--cached", "-f", "-q", "--", *added])
    names = ", ".join(repr(p) for p in added)
    if undo.result.exit_code != 0:
        raise ToolError(
            f"{names} is a nested git repository and was staged; unstaging it failed: "
            f"{undo.result.output.strip()}"
        )
    raise ToolError(
        f"Not staged: {names} is a nested git repository. Git would run programs named by its "
        "own configuration whenever it looks into it, so the git tool does not add it; "
        "add its files from a plain directory instead (remove its .git)"
    )
