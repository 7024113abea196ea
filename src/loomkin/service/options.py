"""Turn a validated ``loomkin.toml`` into the plain values the runtime takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.agents import Budgets, SessionSettings
from loomkin.agents.roles import custom_role
from loomkin.agents.tools import toolset_for
from loomkin.coordination import RebalancerSettings
from loomkin.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from loomkin.tools.builtin import ShellPolicy
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.service.config import LoomkinConfig

__all__ = ["SessionOptions", "session_options"]


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
        ConfigError: a custom role names a tool that does not exist.
    """
    roles = {
        name: custom_role(name, prompt=r.prompt, tools=r.tools, description=r.description)
        for name, r in config.roles.items()
    }
    for role in roles.values():
        toolset_for(role)  # fails early, naming the unknown tool
    b = config.budgets
    settings = SessionSettings(
        max_iterations=config.limits.max_iterations,
        max_agents_per_team=config.limits.max_agents_per_team,
        max_team_depth=config.limits.max_team_depth,
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
        shell_policy=ShellPolicy(
            allow=frozenset(config.shell.allow),
            deny=frozenset(config.shell.deny),
            default_timeout_s=config.shell.timeout_s,
            network=config.shell.network,
        ),
    )
    prices = dict(DEFAULT_PRICES)
    for model, price in config.pricing.items():
        prices[model] = Price(
            input_per_mtok=price.input_per_mtok, output_per_mtok=price.output_per_mtok
        )
    return SessionOptions(
        settings=settings,
        policy=PermissionPolicy(
            auto_approve=frozenset(config.permissions.auto_approve),
            deny=frozenset(config.permissions.deny),
        ),
        prices=PriceTable(prices),
        model=config.model.default,
        base_url=config.model.base_url,
        api_key_env=config.model.api_key_env,
    )
