from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from loomkin.persistence.migrations import HEAD, REVISIONS, SCRIPT_LOCATION


async def test_known_revisions_match_the_scripts() -> None:
    # async only because a sync test before async ones leaks a loop under pytest-asyncio 1.5
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    scripts = ScriptDirectory.from_config(config)
    chain = [s.revision for s in scripts.walk_revisions()]  # newest first
    assert tuple(reversed(chain)) == REVISIONS
    assert scripts.get_current_head() == HEAD
    assert all(r.isdigit() and len(r) == 4 for r in REVISIONS)
