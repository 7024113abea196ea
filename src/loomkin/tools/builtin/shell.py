"""``shell``: run a command line in the project directory.

The command is checked by the guard (:func:`~loomkin.tools.builtin.shell_guard.check_command`),
then run by the policy's :class:`~loomkin.tools.builtin.sandbox.Sandbox`: in bubblewrap where it
works (project writable, rest read-only, no network unless configured, no secrets in the
environment, nothing outliving the call), under the guard alone where it does not.

Results: a command that exits 0 returns its output followed by ``[exit code 0]``. A command
that exits non-zero, or is killed on timeout, raises :class:`~loomkin.errors.ToolError`
whose message holds the output and the exit code (or the timeout), so the agent loop marks
the result as an error while the model still reads everything the command printed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from pydantic import Field

from loomkin.errors import ToolError
from loomkin.tools.base import ToolArgs, ToolContext, tool
from loomkin.tools.builtin.shell_guard import ShellPolicy, check_command

if TYPE_CHECKING:
    from loomkin.tools.builtin._proc import ProcessResult

__all__ = ["ShellArgs", "ShellDeps", "format_process_result", "shell"]


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


def format_process_result(
    result: ProcessResult, *, timeout_s: float, notice: str | None = None
) -> str:
    """Render a process result for the model; raises ToolError for failure and timeout.

    Args:
        result: What the process produced.
        timeout_s: The timeout it ran under (named in the timeout message).
        notice: A line to show first (the sandbox's one-time "running unsandboxed" note).

    Raises:
        ToolError: the process exited non-zero or was killed on timeout.
    """
    output = result.output.rstrip("\n") or "(no output)"
    if notice is not None:
        output = f"{notice}\n{output}"
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
    Only the project is writable, /tmp is private, there is no network unless configured,
    and background processes end with the command. Commands acting outside the project are
    refused.
    """
    policy = deps.shell_policy
    await asyncio.to_thread(check_command, args.command, ctx.project_root, policy)
    timeout_s = min(args.timeout_s or policy.default_timeout_s, policy.max_timeout_s)
    run = await policy.sandbox.run(
        project_root=ctx.project_root,
        timeout_s=timeout_s,
        output_cap=policy.output_cap,
        shell_command=args.command,
        network=policy.network,
    )
    return format_process_result(run.result, timeout_s=timeout_s, notice=run.notice)
