"""``git``: status, diff, log, add and commit in the project's repository.

Git runs without a shell (``git --no-pager <operation> <args>``) in the project root. The
arguments are checked first: options that point git somewhere else or run other programs
(``-C``, ``--git-dir``, ``--work-tree``, ``-c``, ``--exec-path``, ``--output``,
``--ext-diff``), interactive options (``-p``, ``-i``, ``-e``) and paths outside the project
are refused, and ``commit`` needs a message (``-m``). Failures raise
:class:`~loomkin.errors.ToolError` with git's output and exit code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from loomkin.errors import PathEscapeError, ToolError
from loomkin.tools.base import ToolArgs, ToolContext, tool
from loomkin.tools.builtin._proc import run_process
from loomkin.tools.builtin.shell import child_env, format_process_result
from loomkin.tools.paths import resolve_in_project

__all__ = ["GIT_OUTPUT_CAP", "GIT_TIMEOUT_S", "GitArgs", "git"]

GIT_TIMEOUT_S = 60.0
GIT_OUTPUT_CAP = 10_000

GitOperation = Literal["status", "diff", "log", "add", "commit"]

_REFUSED_OPTIONS = {
    "-C": "runs git in another directory",
    "-c": "sets git configuration (which can run programs)",
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


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "~")) or ".." in value.replace("\\", "/").split("/")


def _check_path(ctx: ToolContext, value: str) -> None:
    if value.startswith("~"):
        raise ToolError(f"git argument {value!r} is outside the project ('~' is not expanded)")
    try:
        resolve_in_project(ctx.project_root, value)
    except PathEscapeError as exc:
        raise ToolError(f"git argument refused: {exc}") from None


def _validate(args: GitArgs, ctx: ToolContext) -> None:
    for arg in args.args:
        if "\0" in arg:
            raise ToolError("git arguments cannot contain NUL bytes")
        if arg.startswith("-") and arg != "-":
            _check_option(args.operation, arg)
            value = arg.split("=", 1)[1] if "=" in arg else ""
            if value and _looks_like_path(value):
                _check_path(ctx, value)
        elif _looks_like_path(arg):
            _check_path(ctx, arg)
    if args.operation == "commit" and not _has_message(args.args):
        raise ToolError("git commit needs a message: pass args like ['-m', 'Describe the change']")


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


@tool(name="git", category="execute", args=GitArgs, target=_git_target)
async def git(args: GitArgs, ctx: ToolContext, deps: object) -> str:
    """Run git status, diff, log, add or commit in the project repository.

    Returns git's output and exit code. Commit needs ['-m', 'message'] in args.
    """
    _validate(args, ctx)
    argv = ["git", "--no-pager", "-c", "color.ui=false", args.operation, *args.args]
    result = await run_process(
        cwd=ctx.project_root,
        timeout_s=GIT_TIMEOUT_S,
        output_cap=GIT_OUTPUT_CAP,
        argv=argv,
        env=child_env(),
    )
    return format_process_result(result, timeout_s=GIT_TIMEOUT_S)
