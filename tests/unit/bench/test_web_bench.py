"""``python -m loomkin.bench web``: bad flags are one-line errors; the session it builds is real.

The browser part runs in ``python -m loomkin.bench web`` itself (a benchmark, not a test);
here: the flags, and that the benchmark's session holds the events it claims, with the
kinds a run writes, readable from its newest end as the page reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.bench.__main__ import main
from loomkin.bench.web import build_session

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_bad_flags_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "--stream-s", "0"]) == 2
    assert "--stream-s must be positive" in capsys.readouterr().err


async def test_the_benchmark_session_has_the_size_it_claims(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    loomkin, session, _filler = await build_session(f"sqlite:///{tmp_path}/s.db", project, 600)
    async with loomkin:
        events = await session.history()
        assert 600 <= len(events) < 610
        kinds = {e.event.kind for e in events}
        assert {"model_call_started", "tool_call_completed", "message_sent"} <= kinds
        tail = await loomkin.history_before(session.session_id, limit=50)
        assert [e.position for e in tail] == [e.position for e in events[-50:]]
        assert len(session.tasks()) == 12
