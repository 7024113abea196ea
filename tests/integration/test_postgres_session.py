"""The whole runtime on the real PostgreSQL store: run the demo, restart, and read it back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.demo import copy_sample_project, demo_model, start_demo
from loomkin.service import Loomkin
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


async def test_a_session_runs_on_postgres_and_resumes_from_it(tmp_path: Path) -> None:
    server = postgres_test_url()
    async with scratch_postgres_schema(server) as schema:
        url = f"{server}{'&' if '?' in server else '?'}schema={schema}"
        project = copy_sample_project(tmp_path / "sample")
        async with await Loomkin.open(url) as lk:
            session = await start_demo(lk, project=project)
            await session.wait_idle()
            summary = await session.summary()
            session_id = session.session_id
            positions = lk.last_position
        assert summary.tasks == {"completed": 3}
        # A second runtime on the same store rebuilds the same state from the log.
        async with await Loomkin.open(url) as again:
            resumed = await again.resume_session(session_id, model_factory=demo_model)
            assert again.last_position == positions
            assert {a.name: a.status for a in resumed.agents()} == {
                "concierge": "idle",
                "orienter": "idle",
                "alice": "idle",
                "bob": "idle",
                "tess": "idle",
            }
            assert (await resumed.summary()).tasks == {"completed": 3}
    assert "shout" in (project / "greetings" / "core.py").read_text()
