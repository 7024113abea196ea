"""Tools the agents call: the port, the built-in file/shell/git tools, permissions."""

from loomkin.tools.base import (
    FileAccessLog,
    FunctionTool,
    MemoryFileAccessLog,
    Tool,
    ToolArgs,
    ToolContext,
    ToolSet,
    ToolSpec,
    tool,
)
from loomkin.tools.paths import display_path, resolve_in_project
from loomkin.tools.permissions import (
    PermissionGrant,
    PermissionOutcome,
    PermissionPolicy,
)

__all__ = [
    "FileAccessLog",
    "FunctionTool",
    "MemoryFileAccessLog",
    "PermissionGrant",
    "PermissionOutcome",
    "PermissionPolicy",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolSet",
    "ToolSpec",
    "display_path",
    "resolve_in_project",
    "tool",
]
