"""``[autoscale]`` in loomkin.toml: parsed, checked with clear errors, and given to sessions."""

from __future__ import annotations

import pytest

from loomkin.errors import ConfigError
from loomkin.service.config import parse_config
from loomkin.service.options import session_options


def test_the_table_reaches_the_session_settings() -> None:
    config = parse_config(
        "[budgets]\nsession_usd = 4.0\n[limits]\nmax_agents_per_team = 6\n"
        "[autoscale]\nenabled = true\nwindow_s = 10\nmax_agents = 12\nretire_after_s = 90\n"
        "warm_spares = 1\n"
    )
    scaling = session_options(config).settings.autoscale
    assert scaling.enabled is True
    assert scaling.window_s == 10.0
    assert scaling.max_agents == 6  # never above the session's hard limit per team
    assert scaling.retire_after_s == 90.0
    assert scaling.warm_spares == 1
    assert scaling.session_budget_usd == 4.0


def test_defaults_leave_it_off() -> None:
    assert session_options(parse_config("")).settings.autoscale.enabled is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[autoscale]\nenabled = 1\n", "autoscale.enabled"),
        ("[autoscale]\nmax_agents = 0\n", "autoscale.max_agents"),
        ("[autoscale]\nmin_agents = 5\nmax_agents = 2\n", "min_agents 5 is above max_agents 2"),
        ("[autoscale]\nwindow = 3\n", "did you mean 'window_s'"),
        ("[autoscale]\nscale_up_ratio = -1.0\n", "autoscale.scale_up_ratio"),
    ],
)
def test_bad_values_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_config(text)
