"""Turn a validated ``loomkin.toml`` into the plain values the runtime takes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.agents import Budgets, SessionSettings
from loomkin.agents.roles import BUILTIN_ROLES, custom_role, with_tools
from loomkin.agents.settings import ContextSettings
from loomkin.agents.tools import toolset_for
from loomkin.coordination import RebalancerSettings
from loomkin.coordination.autoscale import AutoscaleSettings
from loomkin.coordination.negotiation import NegotiationSettings
from loomkin.core.speculation import SpeculationPolicy
from loomkin.errors import ConfigError
from loomkin.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from loomkin.tools.builtin import ShellPolicy
from loomkin.tools.mcp import HttpTransport, McpNames, McpServerSpec, StdioTransport, mcp_rule
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.service.config import LoomkinConfig, PriceSection

__all__ = ["SessionOptions", "mcp_servers", "session_options"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOptions:
    """Everything a session needs from the configuration."""

    settings: SessionSettings
    policy: PermissionPolicy
    prices: PriceTable
    model: str | None
    base_url: str | None
    api_key_env: str | None
    """The variable holding the key for ``base_url`` (``[model] api_key_env``)."""


def session_options(config: LoomkinConfig) -> SessionOptions:
    """Build the session's settings, permission policy and price table from ``config``.

    Raises:
        ConfigError: a custom role names a tool that does not exist or an MCP server that is
            not configured, an MCP server names an unknown role, or a ``${NAME}`` in an MCP
            server's env or headers is not set.
    """
    roles = {
        name: custom_role(name, prompt=r.prompt, tools=r.tools, description=r.description)
        for name, r in config.roles.items()
    }
    servers = mcp_servers(config)
    roles = _opt_in(roles, servers)
    declared = McpNames(s.name for s in servers)
    for role in roles.values():
        toolset_for(role, declared)  # fails early, naming the unknown tool or server
    b = config.budgets
    settings = SessionSettings(
        max_iterations=config.limits.max_iterations,
        max_agents_per_team=config.limits.max_agents_per_team,
        max_team_depth=config.limits.max_team_depth,
        stream_idle_timeout_s=config.limits.stream_idle_timeout_s,
        budgets=Budgets(
            session_usd=b.session_usd,
            team_usd=b.team_usd,
            agent_usd=b.agent_usd,
            session_tokens=b.session_tokens,
            team_tokens=b.team_tokens,
            agent_tokens=b.agent_tokens,
        ),
        custom_roles=roles,
        comms_policy=config.comms.policy,
        comms_allow=frozenset(config.comms.allow),
        propagation_depth=config.comms.propagation_depth,
        rebalancer=RebalancerSettings(
            stuck_after_s=config.rebalancer.stuck_after_s,
            check_every_s=config.rebalancer.check_every_s,
        ),
        negotiation=NegotiationSettings(
            enabled=config.negotiation.enabled,
            window_s=config.negotiation.window_s,
            counter_window_s=config.negotiation.counter_window_s,
        ),
        autoscale=autoscale_settings(config),
        shell_policy=ShellPolicy(
            allow=frozenset(config.shell.allow),
            deny=frozenset(config.shell.deny),
            default_timeout_s=config.shell.timeout_s,
            network=config.shell.network,
        ),
        speculation=SpeculationPolicy(**config.speculation.model_dump()),
        mcp_servers=servers,
        context=ContextSettings(
            window_tokens=config.context.window_tokens,
            windows=dict(config.context.windows),
            compact_at=config.context.compact_at,
            compact_to=min(config.context.compact_to, config.context.compact_at),
            keep_turns=config.context.keep_turns,
            summarise=config.context.summarise,
        ),
    )
    prices = dict(DEFAULT_PRICES)
    defaults = PriceTable()
    for model, price in config.pricing.items():
        prices[model] = _price(price, defaults.price(model))
    return SessionOptions(
        settings=settings,
        policy=PermissionPolicy(
            auto_approve=frozenset(config.permissions.auto_approve)
            | {mcp_rule(s.name) for s in servers if s.permission == "allow"},
            deny=frozenset(config.permissions.deny)
            | {mcp_rule(s.name) for s in servers if s.permission == "deny"},
        ),
        prices=PriceTable(prices),
        model=config.model.default,
        base_url=config.model.base_url,
        api_key_env=config.model.api_key_env,
    )


def autoscale_settings(config: LoomkinConfig) -> AutoscaleSettings:
    """The ``[autoscale]`` table as the autoscaler's settings (the budget is the session's)."""
    a = config.autoscale
    return AutoscaleSettings(
        enabled=a.enabled,
        scale_up_ratio=a.scale_up_ratio,
        window_s=a.window_s,
        cooldown_s=a.cooldown_s,
        max_agents=min(a.max_agents, config.limits.max_agents_per_team),
        min_agents=a.min_agents,
        max_spawn_step=a.max_spawn_step,
        retire_after_s=a.retire_after_s,
        warm_spares=a.warm_spares,
        anticipate=a.anticipate,
        default_role=a.default_role,
        agent_cost_usd=a.agent_cost_usd,
        session_budget_usd=config.budgets.session_usd,
    )


def mcp_servers(config: LoomkinConfig) -> tuple[McpServerSpec, ...]:
    """The ``[mcp.servers.*]`` of ``config``, with ``${NAME}`` in env and headers expanded.

    Raises:
        ConfigError: a ``${NAME}`` names a variable that is not set.
    """
    specs: list[McpServerSpec] = []
    for name, server in config.mcp.servers.items():
        where = f"mcp.servers.{name}"
        transport: StdioTransport | HttpTransport
        if server.command is not None:
            transport = StdioTransport(
                command=server.command,
                args=server.args,
                env=tuple((k, _expand(v, f"{where}.env.{k}")) for k, v in server.env.items()),
                cwd=server.cwd,
            )
        else:
            assert server.url is not None  # the config checked: one of command and url
            transport = HttpTransport(
                url=server.url,
                headers=tuple(
                    (k, _expand(v, f"{where}.headers.{k}")) for k, v in server.headers.items()
                ),
            )
        specs.append(
            McpServerSpec(
                name=name,
                transport=transport,
                permission=server.permission,
                roles=server.roles,
                call_timeout_s=server.timeout_s,
                startup_timeout_s=server.startup_timeout_s,
            )
        )
    return tuple(specs)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, where: str) -> str:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            raise ConfigError(f"loomkin.toml: {where}: the variable {name} is not set")
        return found

    return _VARIABLE.sub(variable, value)


def _opt_in(roles: dict[str, Role], servers: tuple[McpServerSpec, ...]) -> dict[str, Role]:
    """Add ``"mcp:NAME"`` to the roles each server names in its ``roles``.

    A built-in role named there becomes a custom role of the same name with the extra tools.
    """
    extra: dict[str, list[str]] = {}
    for server in servers:
        for role in server.roles:
            if role not in roles and role not in BUILTIN_ROLES:
                known = ", ".join([*BUILTIN_ROLES, *roles])
                raise ConfigError(
                    f"loomkin.toml: mcp.servers.{server.name}.roles: unknown role {role!r} "
                    f"(roles: {known})"
                )
            extra.setdefault(role, []).append(mcp_rule(server.name))
    opted = dict(roles)
    for name, rules in extra.items():
        opted[name] = with_tools(roles.get(name) or BUILTIN_ROLES[name], tuple(rules))
    return opted


def _price(section: PriceSection, known: Price | None) -> Price:
    """A ``[pricing]`` entry; cache prices left out keep the vendor's ratio to the input price."""

    def ratio(value: float | None, base: float | None) -> float | None:
        if value is not None or base is None or known is None or not known.input_per_mtok:
            return value
        return section.input_per_mtok * base / known.input_per_mtok

    return Price(
        input_per_mtok=section.input_per_mtok,
        output_per_mtok=section.output_per_mtok,
        cached_input_per_mtok=ratio(
            section.cached_input_per_mtok, known.cached_input_per_mtok if known else None
        ),
        cache_write_per_mtok=ratio(
            section.cache_write_per_mtok, known.cache_write_per_mtok if known else None
        ),
    )
