"""Issue #20: every retry of a model call is an event, shown in the terminal and the feed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.api.feed import feed_row
from loomkin.cli.progress import describe
from loomkin.core.events import ModelCallFailed
from loomkin.errors import ProviderUnavailable, RateLimited
from loomkin.llm.retry import RetryingModel, RetryPolicy
from loomkin.testing.models import Fail, Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime


async def test_a_429_storm_is_journaled_and_shown_attempt_by_attempt(
    lk: Loomkin, project: Path
) -> None:
    inner = ScriptedModel(
        [
            Fail(RateLimited("HTTP 429 (rate limited or overloaded): slow down")),
            Fail(ProviderUnavailable("HTTP 503 (server error): busy", status=503)),
            Reply(text="finally"),
        ]
    )
    rig = await make_rig(lk, project, RetryingModel(inner, policy=RetryPolicy(random=lambda: 0.0)))
    await rig.send("go")
    await lk.wait_idle()
    recorded = [r for r in await rig.session.history() if isinstance(r.event, ModelCallFailed)]
    failed = [r.event for r in recorded if isinstance(r.event, ModelCallFailed)]
    assert [(f.attempt, f.will_retry, f.delay_s) for f in failed] == [
        (1, True, 1.0),
        (2, True, 2.0),
    ]
    assert "429" in failed[0].error
    assert "503" in failed[1].error
    rows = [feed_row(r, rig.session.names()) for r in recorded]
    assert [row.type if row else None for row in rows] == ["retry", "retry"]
    assert rows[0] is not None
    assert rows[0].summary.startswith("model call failed (attempt 1), retrying in 1.0 s: HTTP 429")
    assert rows[0].actor == "worker"
    lines = [describe(f, rig.session) for f in failed]
    assert lines[1] == (
        "[yellow]retry[/] worker: model call failed (attempt 2), retrying in 2.0 s: "
        "HTTP 503 (server error): busy"
    )


async def test_a_final_failure_is_an_error_row_and_line(lk: Loomkin, project: Path) -> None:
    inner = ScriptedModel([Fail(RateLimited("HTTP 429: [bold]no[/bold]"))] * 2)
    model = RetryingModel(inner, policy=RetryPolicy(max_retries=1, random=lambda: 0.0))
    settings = SessionSettings(
        bootstrap_orienter=False, model_retry=RetryPolicy(max_retries=1, random=lambda: 0.0)
    )
    rig = await make_rig(lk, project, model, settings=settings)
    await rig.send("go")
    await lk.wait_idle()
    recorded = [r for r in await rig.session.history() if isinstance(r.event, ModelCallFailed)]
    last = recorded[-1].event
    assert isinstance(last, ModelCallFailed)
    assert not last.will_retry
    row = feed_row(recorded[-1], rig.session.names())
    assert row is not None
    assert row.type == "error"
    line = describe(last, rig.session)
    assert line is not None
    assert line.startswith("[bold red]model error[/] worker: ")
    assert "\\[bold]no\\[/bold]" in line  # the provider's text is escaped, never markup
