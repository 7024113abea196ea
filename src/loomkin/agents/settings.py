"""The settings of a session: limits, budgets, policies (built from ``loomkin.toml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loomkin.agents.budgets import Budgets
from loomkin.agents.roles import Role
from loomkin.coordination import RebalancerSettings
from loomkin.coordination.autoscale import AutoscaleSettings
from loomkin.coordination.negotiation import NegotiationSettings
from loomkin.core.comms import CommsPolicyName
from loomkin.core.speculation import SpeculationPolicy
from loomkin.llm.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from loomkin.tools.builtin import ShellPolicy
from loomkin.tools.mcp.spec import McpServerSpec

__all__ = ["Budgets", "ContextSettings", "SessionSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextSettings:
    """When an agent's transcript is compacted (``[context]`` in ``loomkin.toml``)."""

    window_tokens: int | None = None
    """The context window of every model (``None``: each model's own window)."""
    windows: dict[str, int] = field(default_factory=dict)
    """Per-model windows, by ``provider:model`` name or prefix."""
    compact_at: float = 0.8
    """Compact before a call whose request would pass this fraction of the window."""
    compact_to: float = 0.5
    """A compaction brings the request down to this fraction of the window, so the next
    ones have room to grow (and share a cached prefix) before another is needed."""
    keep_turns: int = 4
    """The newest turns (a model response and its tool results) kept word for word."""
    summarise: bool = True
    """Summarise older turns with a model call (else a list of the calls they made)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSettings:
    """Limits and switches of a session (built from ``loomkin.toml`` by the service layer)."""

    max_iterations: int = 30
    stream_idle_timeout_s: float = 120.0
    """A model stream silent this long (keep-alives only, or nothing) is a failed, retried call."""
    model_retry: RetryPolicy = DEFAULT_RETRY_POLICY
    """How a failed model call is retried by the loop (a stream cut by an error, a silent
    stream); transient errors before the first chunk are retried by the model's wrapper
    (:class:`~loomkin.llm.retry.RetryingModel`) and count towards the same limit."""
    max_agents_per_team: int = 8
    max_team_depth: int = 3
    budgets: Budgets = field(default_factory=Budgets)
    bootstrap_orienter: bool = True
    custom_roles: dict[str, Role] = field(default_factory=dict)
    question_timeout_s: float = 300.0
    comms_policy: CommsPolicyName = "neighbours"
    comms_allow: frozenset[tuple[str, str]] = frozenset()
    """Extra pairs of team names allowed to talk (either direction) beyond the policy."""
    propagation_depth: int = 1
    """Levels a shared insight, blocker, discovery or warning climbs above its team."""
    max_question_hops: int = 5
    """Times a question may be forwarded before forwarding is refused."""
    shell_policy: ShellPolicy = field(default_factory=ShellPolicy)
    coordination_roles: frozenset[str] = frozenset({"concierge", "orienter", "lead"})
    """Roles the scheduler does not hand tasks to automatically."""
    rebalancer: RebalancerSettings = field(default_factory=RebalancerSettings)
    negotiation: NegotiationSettings = field(default_factory=NegotiationSettings)
    briefed_timeout_s: float = 60.0
    """How long the Concierge waits for the Orienter's ``briefed`` signal before it plans."""
    """Negotiation of assignments (``[negotiation]`` in ``loomkin.toml``)."""
    """When an agent counts as stuck or looping, and how often that is checked."""
    speculation: SpeculationPolicy = field(default_factory=SpeculationPolicy)
    """When idle agents may start tasks ahead of their blockers (``[speculation]``)."""
    autoscale: AutoscaleSettings = field(default_factory=AutoscaleSettings)
    """When teams grow and shrink by themselves (``[autoscale]``; off by default)."""
    context: ContextSettings = field(default_factory=ContextSettings)
    """Context windows and compaction (``[context]``)."""
    mcp_servers: tuple[McpServerSpec, ...] = ()
    """MCP tool servers started with the session (``[mcp.servers.*]``); roles opt in."""
