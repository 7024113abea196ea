r"""The tool port and its function-backed implementation.

How this works and why:

* :class:`Tool` is the port the agent loop talks to. A tool has a name, a description, a
  :data:`~loomkin.core.records.ToolCategory` (which drives the permission policy), a JSON
  Schema for its arguments, and three steps the loop calls in order: :meth:`Tool.parse_args`
  (model text → validated pydantic model, or a :class:`~loomkin.errors.ToolError` the model
  can read), :meth:`Tool.target` (the path or command the call acts on, for permission
  prompts and conflict detection) and :meth:`Tool.run` (does the work, returns the text the
  model reads).
* Tools are generic over the *deps* they need (``Tool[DepsT]``), never an untyped bag. The
  type variable is contravariant, so a ``Tool[FileDeps]`` is usable wherever a
  ``Tool[AgentDeps]`` is expected as long as ``AgentDeps`` provides what ``FileDeps`` asks for
  (deps requirements are small ``Protocol`` classes). Tools that need nothing use ``object``.
* A tool says whether a call is *idempotent* (:meth:`Tool.idempotent`): running it again
  with the same arguments leaves the same state (reads, searches, listings, a write of whole
  content, read-only git). A call cut off by a crash is run again on resume only if so;
  otherwise the model is told it was interrupted. The default is ``False``: say so only
  when a second run cannot do anything the first did not.
* :class:`FunctionTool` wraps a pydantic args model and an async function; :func:`tool` is
  its decorator. The JSON Schema is built once, when the tool is defined.
* :class:`ToolSet` is an ordered, immutable name → tool mapping with the lookups the loop
  needs (an unknown name is a :class:`~loomkin.errors.ToolError` listing the known ones).
* :class:`FileAccessLog` records which files each agent has read (and the file's mtime at
  that moment) so write/edit tools can warn about blind or stale writes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from loomkin.core.arguments import ArgumentsError, decode_arguments
from loomkin.core.events.base import JSON
from loomkin.errors import ToolError, UserError
from loomkin.ids import AgentId, CallId, SessionId, TaskId, TeamId

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

    from loomkin.core.records import ToolCategory

__all__ = [
    "FileAccessLog",
    "FunctionTool",
    "MemoryFileAccessLog",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolSet",
    "ToolSpec",
    "tool",
]

DepsT = TypeVar("DepsT")
DepsT_contra = TypeVar("DepsT_contra", contravariant=True)
ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """Who is calling a tool, where, and for which call."""

    project_root: Path
    """The project directory every file, shell and git tool is confined to."""
    agent_id: AgentId
    """The calling agent."""
    agent_name: str
    """The calling agent's name within its team (``coder``, ``reviewer-2``...)."""
    team_id: TeamId
    """The calling agent's team."""
    session_id: SessionId
    """The session the call belongs to."""
    call_id: CallId
    """Stable id of this tool call (journaled, so a resume never repeats it)."""
    task_id: TaskId | None = None
    """The calling agent's task in progress, if any."""
    role: str = ""
    """The calling agent's role."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """What the model is told about one tool (the agent layer turns it into an LLM schema)."""

    name: str
    """The name the model calls the tool by."""
    description: str
    """What the tool does and when to use it."""
    parameters: dict[str, JSON]
    """JSON Schema of the arguments object."""


class ToolArgs(BaseModel):
    """Base of every tool's arguments model: immutable, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Tool(Protocol[DepsT_contra]):
    """A capability the model can call (the port the agent loop uses)."""

    @property
    def name(self) -> str:
        """The name the model calls the tool by (unique within a :class:`ToolSet`)."""
        ...

    @property
    def description(self) -> str:
        """What the tool does, shown to the model."""
        ...

    @property
    def category(self) -> ToolCategory:
        """``read``, ``write``, ``execute`` or ``coordination`` (drives permissions)."""
        ...

    def schema(self) -> dict[str, JSON]:
        """Return the JSON Schema of the arguments object."""
        ...

    def parse_args(self, raw: str | Mapping[str, JSON]) -> BaseModel:
        """Validate the model's arguments (JSON text or an already decoded object).

        Raises:
            ToolError: the arguments are not a JSON object or break the schema; the message
                names the field and the problem so the model can correct itself.
        """
        ...

    def target(self, args: BaseModel, ctx: ToolContext) -> str:
        """Return the resolved path or command the call acts on ("" when none)."""
        ...

    def idempotent(self, args: BaseModel) -> bool:
        """Whether running this call again leaves the same state as running it once.

        Decides whether a call cut off by a crash is run again on resume (see the module
        docstring); ``False`` when in doubt.
        """
        ...

    async def run(self, args: BaseModel, ctx: ToolContext, deps: DepsT_contra) -> str:
        """Do the work and return the text the model reads.

        Raises:
            ToolError: the call failed in a way the model should read (the agent loop turns
                it into an error-flagged tool result).
        """
        ...


ToolFunc = Callable[[ArgsT, ToolContext, DepsT], Awaitable[str]]
TargetFunc = Callable[[ArgsT, ToolContext], str]
Idempotence = bool | Callable[[ArgsT], bool]
"""Whether a tool's calls are idempotent: always (``True``), never, or per arguments."""


class FunctionTool(Generic[ArgsT, DepsT]):
    """A :class:`Tool` built from a pydantic args model and an async function.

    Args:
        name: The name the model calls the tool by.
        description: What the tool does (defaults to the function's docstring).
        category: Permission category.
        args: The arguments model (subclass :class:`ToolArgs` so unknown fields are refused).
        func: ``async def func(args, ctx, deps) -> str``.
        target: Optional ``target(args, ctx) -> str`` for permission prompts.
        idempotent: Whether a call may be run again after a crash cut it off: ``True``,
            ``False`` (the default) or ``idempotent(args) -> bool``.
    """

    __slots__ = (
        "_args",
        "_category",
        "_description",
        "_func",
        "_idempotent",
        "_name",
        "_schema",
        "_target",
    )

    def __init__(
        self,
        *,
        name: str,
        category: ToolCategory,
        args: type[ArgsT],
        func: ToolFunc[ArgsT, DepsT],
        description: str | None = None,
        target: TargetFunc[ArgsT] | None = None,
        idempotent: Idempotence[ArgsT] = False,
    ) -> None:
        doc = description if description is not None else inspect.getdoc(func)
        if not doc:
            raise UserError(f"Tool {name!r} needs a description (argument or docstring)")
        self._name = name
        self._description = doc
        self._category: ToolCategory = category
        self._args = args
        self._func = func
        self._target = target
        self._idempotent: Idempotence[ArgsT] = idempotent
        schema = cast("dict[str, JSON]", args.model_json_schema())
        schema.pop("title", None)
        schema.pop("description", None)
        self._schema = schema

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def category(self) -> ToolCategory:
        return self._category

    @property
    def args_model(self) -> type[ArgsT]:
        """The pydantic model the arguments are validated against."""
        return self._args

    def schema(self) -> dict[str, JSON]:
        # A deep copy, so a caller that edits the schema cannot change the tool.
        return cast("dict[str, JSON]", json.loads(json.dumps(self._schema)))

    def spec(self) -> ToolSpec:
        """Return the :class:`ToolSpec` the model is shown."""
        return ToolSpec(name=self._name, description=self._description, parameters=self.schema())

    def parse_args(self, raw: str | Mapping[str, JSON]) -> ArgsT:
        obj = _decode_arguments(self._name, raw) if isinstance(raw, str) else dict(raw)
        try:
            return self._args.model_validate(obj)
        except ValidationError as exc:
            problems = "; ".join(_describe_error(e) for e in exc.errors())
            raise ToolError(f"Invalid arguments for {self._name}: {problems}") from None

    def target(self, args: BaseModel, ctx: ToolContext) -> str:
        if self._target is None:
            return ""
        return self._target(self._check(args), ctx)

    def idempotent(self, args: BaseModel) -> bool:
        rule = self._idempotent
        return rule if isinstance(rule, bool) else rule(self._check(args))

    async def run(self, args: BaseModel, ctx: ToolContext, deps: DepsT) -> str:
        return await self._func(self._check(args), ctx, deps)

    def _check(self, args: BaseModel) -> ArgsT:
        if not isinstance(args, self._args):
            raise ToolError(
                f"Internal error: {self._name} got {type(args).__name__} arguments, "
                f"expected {self._args.__name__}"
            )
        return args

    def __repr__(self) -> str:
        return f"FunctionTool(name={self._name!r}, category={self._category!r})"


def tool(
    *,
    name: str,
    category: ToolCategory,
    args: type[ArgsT],
    description: str | None = None,
    target: TargetFunc[ArgsT] | None = None,
    idempotent: Idempotence[ArgsT] = False,
) -> Callable[[ToolFunc[ArgsT, DepsT]], FunctionTool[ArgsT, DepsT]]:
    """Turn an async function into a :class:`FunctionTool`.

    Example::

        @tool(name="file_read", category="read", args=FileReadArgs)
        async def file_read(args: FileReadArgs, ctx: ToolContext, deps: FileDeps) -> str:
            \"\"\"Read a file.\"\"\"

    Args:
        name: The name the model calls the tool by.
        category: Permission category.
        args: The arguments model.
        description: What the tool does (defaults to the function's docstring).
        target: Optional ``target(args, ctx) -> str`` for permission prompts.
        idempotent: Whether a call may be run again after a crash cut it off (see
            :class:`FunctionTool`).

    Returns:
        A decorator producing the tool.
    """

    def decorate(func: ToolFunc[ArgsT, DepsT]) -> FunctionTool[ArgsT, DepsT]:
        return FunctionTool(
            name=name,
            category=category,
            args=args,
            func=func,
            description=description,
            target=target,
            idempotent=idempotent,
        )

    return decorate


def _decode_arguments(tool_name: str, raw: str) -> dict[str, object]:
    try:
        return decode_arguments(raw)
    except ArgumentsError as exc:
        raise ToolError(f"Invalid arguments for {tool_name}: {exc}; send a JSON object") from None


def _describe_error(error: ErrorDetails) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"field {loc!r} is required"
    if kind == "extra_forbidden":
        return f"unknown field {loc!r}"
    if not loc:
        return error["msg"]
    try:
        got = json.dumps(error.get("input"), default=str)
    except (ValueError, RecursionError):  # an input the encoder refuses: name its type
        got = type(error.get("input")).__name__
    if len(got) > 60:
        got = got[:57] + "..."
    return f"field {loc!r}: {error['msg']} (got {got})"


class ToolSet(Generic[DepsT_contra]):
    """An ordered, immutable set of tools keyed by name.

    Args:
        tools: The tools, in the order the model is shown them. Names must be unique.

    Raises:
        UserError: two tools share a name.
    """

    __slots__ = ("_tools",)

    def __init__(self, tools: Iterable[Tool[DepsT_contra]] = ()) -> None:
        by_name: dict[str, Tool[DepsT_contra]] = {}
        for t in tools:
            if t.name in by_name:
                raise UserError(f"Duplicate tool name {t.name!r} in tool set")
            by_name[t.name] = t
        self._tools = by_name

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool[DepsT_contra]]:
        return iter(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __repr__(self) -> str:
        return f"ToolSet({list(self._tools)!r})"

    def names(self) -> tuple[str, ...]:
        """Return the tool names in order."""
        return tuple(self._tools)

    def get(self, name: str) -> Tool[DepsT_contra]:
        """Return the tool called ``name``.

        Raises:
            ToolError: no such tool; the message lists the available ones (for the model).
        """
        try:
            return self._tools[name]
        except KeyError:
            available = ", ".join(self._tools) or "(none)"
            raise ToolError(f"Unknown tool {name!r}. Available tools: {available}") from None

    def schemas(self) -> list[ToolSpec]:
        """Return what the model is told about each tool, in order."""
        return [
            ToolSpec(name=t.name, description=t.description, parameters=t.schema())
            for t in self._tools.values()
        ]

    def subset(self, names: Iterable[str]) -> ToolSet[DepsT_contra]:
        """Return the tools named in ``names`` (kept in this set's order).

        Raises:
            UserError: a name is not in this set.
        """
        wanted = set(names)
        unknown = sorted(wanted - self._tools.keys())
        if unknown:
            raise UserError(
                f"Unknown tool(s) {', '.join(map(repr, unknown))}; "
                f"available: {', '.join(self._tools)}"
            )
        return ToolSet(t for n, t in self._tools.items() if n in wanted)

    def union(self, *others: ToolSet[DepsT_contra]) -> ToolSet[DepsT_contra]:
        """Return this set followed by the tools of ``others`` not already present by name."""
        merged = dict(self._tools)
        for other in others:
            for t in other:
                merged.setdefault(t.name, t)
        return ToolSet(merged.values())


class FileAccessLog(Protocol):
    """Which files each agent has read, and the file's mtime when it did."""

    def note_read(self, agent_id: AgentId, path: Path, mtime_ns: int) -> None:
        """Record that ``agent_id`` has seen ``path`` as it was at ``mtime_ns``."""
        ...

    def last_read(self, agent_id: AgentId, path: Path) -> int | None:
        """Return the mtime (ns) of ``path`` when ``agent_id`` last read it, or None."""
        ...


@dataclass(slots=True)
class MemoryFileAccessLog:
    """An in-memory :class:`FileAccessLog` (one per session; paths are stored resolved)."""

    _reads: dict[tuple[str, Path], int] = field(default_factory=dict)

    def note_read(self, agent_id: AgentId, path: Path, mtime_ns: int) -> None:
        self._reads[(agent_id, path)] = mtime_ns

    def last_read(self, agent_id: AgentId, path: Path) -> int | None:
        return self._reads.get((agent_id, path))
