"""``shell``: run a command line in the project directory.

Results: a command that exits 0 returns its output followed by ``[exit code 0]``. A command
that exits non-zero, or is killed on timeout, raises :class:`~loomkin.errors.ToolError`
whose message holds the output and the exit code (or the timeout), so the agent loop marks
the result as an error while the model still reads everything the command printed.
"""

from __future__ import annotations

import os
from typing import Protocol

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.tools.base import ToolArgs, ToolContext, tool
from loomkin.tools.builtin._proc import ProcessResult, run_process
from loomkin.tools.builtin.shell_guard import ShellPolicy, check_command

__all__ = ["ShellArgs", "ShellDeps", "child_env", "format_process_result", "shell"]


class ShellDeps(Protocol):
    """What the shell tool needs from the agent's deps."""

    @property
    def shell_policy(self) -> ShellPolicy:
        """Allow/deny lists, timeouts and the output cap (from ``loomkin.toml``)."""
        ...


class ShellArgs(ToolArgs):
    """Arguments of ``shell``."""

    command: str = Field(min_length=1, description="Command line, run with /bin/sh.")
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds before the command is killed (default 30).",
    )


def _command_target(args: ShellArgs, ctx: ToolContext) -> str:
    return args.command


def child_env() -> dict[str, str]:
    """Return the environment for child processes: ours, without pagers or prompts."""
    env = dict(os.environ)
    env.update(
        {
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_EDITOR": "true",
            "EDITOR": "true",
        }
    )
    return env


def format_process_result(result: ProcessResult, *, timeout_s: float) -> str:
    """Render a process result for the model; raises ToolError for failure and timeout.

    Raises:
        ToolError: the process exited non-zero or was killed on timeout.
    """
    output = result.output.rstrip("\n") or "(no output)"
    if result.timed_out:
        raise ToolError(
            f"{output}\n[timed out after {timeout_s:g} s: the command and its child "
            "processes were killed]"
        )
    if result.exit_code != 0:
        raise ToolError(f"{output}\n[exit code {result.exit_code}]")
    return f"{output}\n[exit code 0]"


@tool(name="shell", category="execute", args=ShellArgs, target=_command_target)
async def shell(args: ShellArgs, ctx: ToolContext, deps: ShellDeps) -> str:
    """Run a shell command in the project directory and return its output and exit code.

    stdout and stderr are combined; output beyond 10,000 characters is cut in the middle.
    Destructive commands and commands acting outside the project are refused.
    """
    policy = deps.shell_policy
    check_command(args.command, ctx.project_root, policy)
    timeout_s = min(args.timeout_s or policy.default_timeout_s, policy.max_timeout_s)
    result = await run_process(
        cwd=ctx.project_root,
        timeout_s=timeout_s,
        output_cap=policy.output_cap,
        shell_command=args.command,
        env=child_env(),
    )
    return format_process_result(result, timeout_s=timeout_s)
