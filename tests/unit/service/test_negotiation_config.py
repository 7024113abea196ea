"""``[negotiation]`` in loomkin.toml reaches the session settings; bad values are refused."""

from __future__ import annotations

import pytest

from loomkin.errors import ConfigError
from loomkin.service.config import parse_config
from loomkin.service.options import session_options


def test_the_negotiation_table_reaches_the_settings() -> None:
    config = parse_config("[negotiation]\nenabled = false\nwindow_s = 12\ncounter_window_s = 40\n")
    settings = session_options(config).settings.negotiation
    assert (settings.enabled, settings.window_s, settings.counter_window_s) == (False, 12.0, 40.0)
    defaults = session_options(parse_config("")).settings.negotiation
    assert (defaults.enabled, defaults.window_s, defaults.counter_window_s) == (True, 30.0, 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[negotiation]\nwindow_s = 0\n", "negotiation.window_s: must be greater than 0"),
        ("[negotiation]\nenabled = 'yes'\n", "negotiation.enabled"),
        ("[negotiation]\nwindow = 3\n", "negotiation.window"),
    ],
)
def test_bad_negotiation_settings_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)
