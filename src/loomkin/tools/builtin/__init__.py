"""The built-in tools: files, search, shell and git, and the sandbox commands run in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from loomkin.tools.base import FileAccessLog, MemoryFileAccessLog, ToolSet
from loomkin.tools.builtin.files import FileDeps, file_edit, file_read, file_write
from loomkin.tools.builtin.git import git
from loomkin.tools.builtin.sandbox import Sandbox, SandboxRun, child_environment, default_sandbox
from loomkin.tools.builtin.search import content_search, directory_list, file_search
from loomkin.tools.builtin.shell import ShellDeps, shell
from loomkin.tools.builtin.shell_guard import ShellPolicy, check_command

__all__ = [
    "BuiltinDeps",
    "BuiltinToolDeps",
    "FileDeps",
    "Sandbox",
    "SandboxRun",
    "ShellDeps",
    "ShellPolicy",
    "builtin_tools",
    "check_command",
    "child_environment",
    "content_search",
    "default_sandbox",
    "directory_list",
    "file_edit",
    "file_read",
    "file_search",
    "file_write",
    "git",
    "shell",
]


class BuiltinToolDeps(FileDeps, ShellDeps, Protocol):
    """What every built-in tool together needs from the agent's deps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltinDeps:
    """A ready-made :class:`BuiltinToolDeps` (the agent layer may use its own type)."""

    file_access: FileAccessLog = field(default_factory=MemoryFileAccessLog)
    """Which files each agent has read (share one per session)."""
    shell_policy: ShellPolicy = field(default_factory=ShellPolicy)
    """Shell allow/deny lists, timeouts and output cap."""


def builtin_tools() -> ToolSet[BuiltinToolDeps]:
    """Return the built-in tools in the order the model is shown them.

    Role tool groups (SPEC §3.2): read = file_read, file_search, content_search,
    directory_list; write = file_write, file_edit; execute = shell, git.
    """
    return ToolSet[BuiltinToolDeps](
        [
            file_read,
            file_search,
            content_search,
            directory_list,
            file_write,
            file_edit,
            shell,
            git,
        ]
    )
