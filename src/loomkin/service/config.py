"""``loomkin.toml``: the project's configuration, validated at the boundary.

How this works and why: the file is parsed with :mod:`tomllib` and validated by pydantic
models that refuse unknown keys everywhere (a typo must not be silently ignored) and accept
no lossy coercion (``max_iterations = "30"`` or ``= true`` is an error, not 30 or 1). Every
problem becomes one :class:`~loomkin.errors.ConfigError` naming the file, the dotted key path
(``limits.max_iterations``) and what is wrong. Below the service layer nothing sees these
models: :mod:`loomkin.service.options` turns them into the plain values the lower layers take
(permission policy, shell policy, price table, session settings).

Example::

    [model]
    default = "openai-compatible:qwen2.5-coder"
    base_url = "https://llm.internal.example/v1"
    api_key_env = "INTERNAL_LLM_KEY"   # the key for base_url; without it none is sent

    [permissions]
    auto_approve = ["file_edit", "category:write"]
    deny = ["shell"]

    [shell]
    deny = ["git push"]
    network = false

    [limits]
    max_iterations = 40
    stream_idle_timeout_s = 120

    [roles.docs-writer]
    prompt = "You write and update documentation."
    tools = ["file_read", "file_write", "file_edit"]

    [pricing."openai:my-finetune"]
    input_per_mtok = 3.0
    output_per_mtok = 12.0

    [context]
    window_tokens = 64000   # compact transcripts to fit this (default: each model's window)
    compact_at = 0.8
    compact_to = 0.5
    keep_turns = 4

    [comms]
    policy = "neighbours"
    allow = [["frontend", "backend"]]
    propagation_depth = 1

    [mcp.servers.git]
    command = "uvx"
    args = ["mcp-server-git", "--repository", "."]
    roles = ["coder", "reviewer"]
    permission = "ask"
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from typing import TYPE_CHECKING, Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from loomkin.agents.tools import CATALOGUE
from loomkin.errors import ConfigError, UserError
from loomkin.llm.profiles import check_base_url
from loomkin.llm.registry import check_key_env
from loomkin.tools.mcp.spec import SERVER_NAME
from loomkin.tools.permissions import CATEGORIES, validate_rule

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic_core import ErrorDetails

__all__ = [
    "CONFIG_FILE",
    "AutoscaleSection",
    "BudgetsSection",
    "CommsSection",
    "LimitsSection",
    "LoomkinConfig",
    "McpSection",
    "McpServerSection",
    "ModelSection",
    "PermissionsSection",
    "PriceSection",
    "RebalancerSection",
    "RoleSection",
    "ShellSection",
    "load_config",
    "parse_config",
]

CONFIG_FILE = "loomkin.toml"
"""The configuration file's name, at the project root."""

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Text = Annotated[str, Strict()]
Positive = Annotated[int, Strict(), Field(gt=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    """``[model]``: which model agents use by default."""

    default: Text | None = None
    """``"provider:model"``, e.g. ``"openai:gpt-4.1"``; None: the CLI's default."""
    base_url: Text | None = None
    """Endpoint of an OpenAI-compatible server (local models, proxies)."""
    api_key_env: Text | None = None
    """The variable holding the key for ``base_url`` (or for the provider's own endpoint).
    Without it a ``base_url`` gets no key: a provider's key (``OPENAI_API_KEY``) goes only
    to that provider's own endpoint."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_key_env(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("default")
    @classmethod
    def _provider_and_model(cls, value: str | None) -> str | None:
        if value is not None:
            provider, sep, model = value.partition(":")
            if not sep or not provider or not model:
                raise ValueError("must look like 'provider:model'")
        return value


def _permission_rule(rule: str) -> str:
    """Check one permission entry: a known tool, a category, ``mcp:<name>`` or ``*``."""
    try:
        validate_rule(rule)  # empty entries and unknown categories
    except UserError as exc:
        raise ValueError(str(exc)) from None
    if rule == "*" or rule.startswith("category:"):
        return rule
    if rule.startswith("mcp:"):
        # Tools of MCP servers (SPEC §3.12) are not known until the servers are started.
        if not rule.removeprefix("mcp:").strip():
            raise ValueError("an 'mcp:' entry needs a server or tool name, e.g. 'mcp:github'")
        return rule
    if rule not in CATALOGUE:
        # A typo must not silently allow or deny nothing: `deny = ["shel"]` denied nothing.
        known = ["*", *(f"category:{c}" for c in CATEGORIES), *CATALOGUE.names()]
        close = difflib.get_close_matches(rule, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown tool {rule!r}{hint}; entries are tool names, 'category:<name>', "
            "'mcp:<name>' or '*'"
        )
    return rule


PermissionRule = Annotated[str, Strict(), AfterValidator(_permission_rule)]


class PermissionsSection(_Section):
    """``[permissions]``: tool calls allowed without asking, and refused outright."""

    auto_approve: tuple[PermissionRule, ...] = ()
    """Tool names, ``"category:<read|write|execute|coordination>"``, ``"mcp:<name>"`` or
    ``"*"``; an unknown tool or category is an error (with a suggestion)."""
    deny: tuple[PermissionRule, ...] = ()
    """Same forms; deny wins over everything."""


class ShellSection(_Section):
    """``[shell]``: which commands the shell tool may run, and for how long."""

    allow: tuple[Text, ...] = ()
    """When non-empty, only these programs may run."""
    deny: tuple[Text, ...] = ()
    """Programs (``"docker"``) or word prefixes (``"git push"``) refused; deny wins."""
    timeout_s: Annotated[float, Strict(), Field(gt=0, le=600)] = 30.0
    """Default timeout of one command (at most 600 s, the shell tool's upper bound)."""
    network: Annotated[bool, Strict()] = False
    """Whether shell commands may use the network (they run in a sandbox without it)."""


class BudgetsSection(_Section):
    """``[budgets]``: cost (USD) and token limits per session, team and agent."""

    session_usd: PositiveFloat | None = None
    team_usd: PositiveFloat | None = None
    agent_usd: PositiveFloat | None = None
    session_tokens: Positive | None = None
    team_tokens: Positive | None = None
    agent_tokens: Positive | None = None


class LimitsSection(_Section):
    """``[limits]``: sizes of loops and teams."""

    max_iterations: Positive = 30
    """Model calls one agent loop may make before it stops."""
    max_team_depth: Positive = 3
    """Depth of the team tree (the root team is depth 1)."""
    max_agents_per_team: Positive = 8
    stream_idle_timeout_s: Annotated[float, Strict(), Field(gt=0, le=3600)] = 120.0
    """Seconds a model stream may stay silent (keep-alives only) before the call is failed
    and retried."""


class RoleSection(_Section):
    """``[roles.<name>]``: a custom role."""

    prompt: Annotated[str, Strict(), Field(min_length=1)]
    """The role-specific part of the system prompt."""
    tools: tuple[Text, ...] = ()
    """Names of the tools the role may call."""
    description: Text = ""
    """One line: what the role is for."""


class McpServerSection(_Section):
    """``[mcp.servers.<name>]``: an MCP tool server (stdio ``command`` or HTTP ``url``)."""

    command: Annotated[str, Strict(), Field(min_length=1)] | None = None
    """stdio: the program to start (``uvx``, ``npx``, a path...)."""
    args: tuple[Text, ...] = ()
    """stdio: its arguments."""
    env: dict[str, Text] = Field(default_factory=dict)
    """stdio: variables set for it; ``${NAME}`` in a value is read from Loomkin's environment
    (other variables of that environment are not passed on, keys included)."""
    cwd: Text | None = None
    """stdio: its working directory, relative to the project (default: the project root)."""
    url: Text | None = None
    """streamable HTTP: the server's MCP endpoint, e.g. ``http://127.0.0.1:8000/mcp``."""
    headers: dict[str, Text] = Field(default_factory=dict)
    """HTTP: headers sent with every request; ``${NAME}`` in a value is read from the
    environment (keep tokens out of the file)."""
    permission: Literal["allow", "ask", "deny"] = "ask"
    """Calls to its tools: run without asking, ask the user (default), or refuse."""
    roles: tuple[Text, ...] = ()
    """Roles (built-in or ``[roles.*]``) given all its tools; a role can also list
    ``"mcp:<name>"`` in its own ``tools``."""
    timeout_s: Annotated[float, Strict(), Field(gt=0, le=3600)] = 120.0
    """How long one tool call may take."""
    startup_timeout_s: Annotated[float, Strict(), Field(gt=0, le=600)] = 30.0
    """How long the server may take to start and list its tools."""

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either 'command' (a stdio server) or 'url' (an HTTP server)")
        if self.url is not None:
            stdio_only = [k for k in ("args", "env", "cwd") if k in self.model_fields_set]
            if stdio_only:
                raise ValueError(f"{', '.join(map(repr, stdio_only))} only go with 'command'")
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"'url' must be an http(s) URL, got {self.url!r}")
        elif "headers" in self.model_fields_set:
            raise ValueError("'headers' only go with 'url'")
        return self


class McpSection(_Section):
    """``[mcp]``: MCP tool servers, started with each session."""

    servers: dict[str, McpServerSection] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _server_names(cls, value: dict[str, McpServerSection]) -> dict[str, McpServerSection]:
        for name in value:
            if not SERVER_NAME.match(name):
                raise ValueError(
                    f"MCP server name {name!r} must be lower-case letters, digits, '-' or '_' "
                    "(its tools are called NAME.tool)"
                )
        return value


class PriceSection(_Section):
    """``[pricing."<model>"]``: USD per million tokens."""

    input_per_mtok: Annotated[float, Strict(), Field(ge=0)]
    output_per_mtok: Annotated[float, Strict(), Field(ge=0)]
    cached_input_per_mtok: Annotated[float, Strict(), Field(ge=0)] | None = None
    """Input read from the prompt cache (default: the vendor's ratio, or the input price)."""
    cache_write_per_mtok: Annotated[float, Strict(), Field(ge=0)] | None = None
    """Input written to the prompt cache (default: the vendor's ratio, or the input price)."""


class ContextSection(_Section):
    """``[context]``: context windows and when an agent's transcript is compacted."""

    window_tokens: Positive | None = None
    """The context window of every model (default: each model's published window)."""
    windows: dict[str, Positive] = Field(default_factory=dict)
    """Per-model windows, ``"provider:model" = tokens`` (a name prefix matches variants)."""
    compact_at: Annotated[float, Strict(), Field(gt=0.1, le=1.0)] = 0.8
    """Compact before a call whose request would pass this fraction of the window."""
    compact_to: Annotated[float, Strict(), Field(gt=0.05, le=1.0)] = 0.5
    """A compaction brings the request down to this fraction of the window."""
    keep_turns: Annotated[int, Strict(), Field(ge=1, le=100)] = 4
    """The newest turns (a model response and its tool results) kept word for word."""
    summarise: Annotated[bool, Strict()] = True
    """Summarise older turns with a model call (else a list of what they did)."""


class CommsSection(_Section):
    """``[comms]``: which teams may message each other."""

    policy: Literal["neighbours", "open"] = "neighbours"
    """``neighbours``: parent, children and siblings only; ``open``: every team."""
    allow: tuple[tuple[Text, Text], ...] = ()
    """Extra pairs of team names allowed to talk (either direction)."""
    propagation_depth: Annotated[int, Strict(), Field(ge=0, le=10)] = 1
    """Levels a shared insight, blocker, discovery or warning climbs above its team."""


class RebalancerSection(_Section):
    """``[rebalancer]``: when a busy agent counts as stuck."""

    stuck_after_s: PositiveFloat = 300.0
    check_every_s: PositiveFloat = 60.0


class SpeculationSection(_Section):
    """``[speculation]``: when a task may start ahead of its blockers (SPEC §3.7)."""

    enabled: Annotated[bool, Strict()] = True
    prior_alpha: PositiveFloat = 1.0
    prior_beta: PositiveFloat = 1.0
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    usd_per_hour: Annotated[float, Field(ge=0.0)] = 20.0
    usd_per_work_hour: Annotated[float, Field(ge=0.0)] = 4.0
    budget_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.06
    max_active: Annotated[int, Strict(), Field(ge=0, le=64)] = 4
    ramp_holds: Annotated[int, Strict(), Field(ge=0, le=1000)] = 2
    stake_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    stake_doubt: Annotated[float, Field(ge=0.0, le=1.0)] = 0.13
    auto: Annotated[bool, Strict()] = False


class NegotiationSection(_Section):
    """``[negotiation]``: whether assignees may negotiate, and the windows."""

    enabled: Annotated[bool, Strict()] = True
    window_s: PositiveFloat = 30.0
    """How long an assignee has to object before the assignment simply stands."""
    counter_window_s: PositiveFloat = 60.0
    """How long an assigner has to answer a counter-proposal."""


class AutoscaleSection(_Section):
    """``[autoscale]``: when teams grow with their backlog and shrink when idle."""

    enabled: Annotated[bool, Strict()] = False
    scale_up_ratio: PositiveFloat = 1.0
    window_s: Annotated[float, Strict(), Field(ge=0)] = 30.0
    cooldown_s: Annotated[float, Strict(), Field(ge=0)] = 60.0
    max_agents: Annotated[int, Strict(), Field(ge=1, le=1000)] = 8
    min_agents: Annotated[int, Strict(), Field(ge=0, le=1000)] = 1
    max_spawn_step: Annotated[int, Strict(), Field(ge=1, le=1000)] = 16
    retire_after_s: PositiveFloat = 300.0
    warm_spares: Annotated[int, Strict(), Field(ge=0, le=1000)] = 0
    anticipate: Annotated[bool, Strict()] = True
    default_role: Text = "coder"
    agent_cost_usd: Annotated[float, Strict(), Field(ge=0)] = 0.25

    @model_validator(mode="after")
    def _min_below_max(self) -> Self:
        if self.min_agents > self.max_agents:
            raise ValueError(f"min_agents {self.min_agents} is above max_agents {self.max_agents}")
        return self


_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


class LoomkinConfig(_Section):
    """The whole of ``loomkin.toml`` (every section optional)."""

    model: ModelSection = ModelSection()
    permissions: PermissionsSection = PermissionsSection()
    shell: ShellSection = ShellSection()
    budgets: BudgetsSection = BudgetsSection()
    limits: LimitsSection = LimitsSection()
    roles: dict[str, RoleSection] = Field(default_factory=dict)
    pricing: dict[str, PriceSection] = Field(default_factory=dict)
    comms: CommsSection = CommsSection()
    rebalancer: RebalancerSection = RebalancerSection()
    speculation: SpeculationSection = SpeculationSection()
    negotiation: NegotiationSection = NegotiationSection()
    autoscale: AutoscaleSection = AutoscaleSection()
    mcp: McpSection = McpSection()
    context: ContextSection = ContextSection()

    @field_validator("roles")
    @classmethod
    def _role_names(cls, value: dict[str, RoleSection]) -> dict[str, RoleSection]:
        for name in value:
            if not _ROLE_NAME.match(name):
                raise ValueError(
                    f"role name {name!r} must be lower-case letters, digits, '-' or '_'"
                )
        return value


def load_config(project_root: Path) -> LoomkinConfig:
    """Read ``loomkin.toml`` from the project root (defaults when there is none).

    Args:
        project_root: The project directory.

    Raises:
        ConfigError: the file cannot be read, is not valid TOML, or breaks the schema; the
            message names the file, the dotted key path and the problem.
    """
    path = project_root / CONFIG_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LoomkinConfig()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = CONFIG_FILE) -> LoomkinConfig:
    """Parse and validate the text of a ``loomkin.toml``.

    Args:
        text: The TOML document.
        source: The file name used in error messages.

    Raises:
        ConfigError: invalid TOML (with line and column) or a schema violation.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively.
        raise ConfigError(f"{source}: invalid TOML: arrays or tables nested too deeply") from None
    try:
        return LoomkinConfig.model_validate(raw)
    except RecursionError:
        raise ConfigError(f"{source}: values nested too deeply") from None
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        if len(problems) == 1:
            raise ConfigError(f"{source}: {problems[0]}") from None
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source}: {len(problems)} problems:\n{listing}") from None


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_SECTION_KEYS: dict[str, type[_Section]] = {
    "model": ModelSection,
    "permissions": PermissionsSection,
    "shell": ShellSection,
    "budgets": BudgetsSection,
    "limits": LimitsSection,
    "comms": CommsSection,
    "rebalancer": RebalancerSection,
    "speculation": SpeculationSection,
    "negotiation": NegotiationSection,
    "autoscale": AutoscaleSection,
    "mcp": McpSection,
    "context": ContextSection,
}
_ENTRY_KEYS: dict[str, type[_Section]] = {"roles": RoleSection, "pricing": PriceSection}


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif _BARE_KEY.match(part):
            parts.append(part)
        else:
            parts.append(json.dumps(part))
    return ".".join(parts)


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    model: type[_Section] | None = None
    if not parent:
        model = LoomkinConfig
    elif len(parent) == 1 and isinstance(parent[0], str):
        model = _SECTION_KEYS.get(parent[0])
    elif len(parent) == 2 and isinstance(parent[0], str):
        model = _ENTRY_KEYS.get(parent[0])
    elif len(parent) == 3 and parent[:2] == ("mcp", "servers"):
        model = McpServerSection
    return list(model.model_fields) if model is not None else []


def _describe(error: ErrorDetails) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = _dotted(loc)
        close = difflib.get_close_matches(key, _known_keys(loc[:-1]), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown key {key!r}{hint}"
    where = _dotted(loc) or "(top level)"
    if kind == "missing":
        return f"{where}: is required"
    message = error["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "must be")
    got = json.dumps(error.get("input"), default=str)
    if len(got) > 60:
        got = got[:57] + "..."
    return f"{where}: {message} (got {got})"
