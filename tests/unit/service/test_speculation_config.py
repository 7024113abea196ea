"""``[speculation]`` in ``loomkin.toml``: read into the session's policy, bad values named."""

from __future__ import annotations

import pytest

from loomkin.core.speculation import SpeculationPolicy
from loomkin.errors import ConfigError
from loomkin.service.config import parse_config
from loomkin.service.options import session_options


def test_speculation_table_becomes_the_policy() -> None:
    config = parse_config(
        "[speculation]\nauto = true\nmin_p = 0.7\nmax_active = 2\nramp_holds = 3\n"
    )
    policy = session_options(config).settings.speculation
    assert policy == SpeculationPolicy(auto=True, min_p=0.7, max_active=2, ramp_holds=3)
    assert session_options(parse_config("")).settings.speculation == SpeculationPolicy()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("min_p = 1.5", "speculation.min_p"),
        ("budget_share = -0.1", "speculation.budget_share"),
        ("auto = 'yes'", "speculation.auto"),
        ("max_active = 2.5", "speculation.max_active"),
        ("ramp_holds = -1", "speculation.ramp_holds"),
        ("hit_rate = 0.5", "hit_rate"),
    ],
)
def test_bad_values_are_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_config(f"[speculation]\n{text}\n")
