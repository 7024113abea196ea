"""Issue #22 over HTTP: the spend of a session, cached input counted apart."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Harness


async def test_spend_splits_input_into_cached_written_and_uncached(harness: Harness) -> None:
    await harness.wait_prompt()
    response = await harness.client.get(f"{harness.base}/spend")
    assert response.status_code == 200, response.text
    spend = response.json()
    assert spend["session_id"] == harness.session.session_id
    assert spend["model_calls"] >= 1
    for row in (spend, *spend["agents"], *spend["teams"]):
        parts = row["cached_input_tokens"] + row["cache_write_tokens"]
        assert parts + row["uncached_input_tokens"] == row["input_tokens"]
    assert sum(a["input_tokens"] for a in spend["agents"]) == spend["input_tokens"]
    summary = (await harness.client.get(f"{harness.base}/summary")).json()
    assert summary["cached_input_tokens"] == spend["cached_input_tokens"]


async def test_spend_of_an_unknown_session_is_404(harness: Harness) -> None:
    response = await harness.client.get("/api/sessions/nope/spend")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


async def test_openapi_documents_the_spend_route(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    assert "/api/sessions/{session_id}/spend" in spec["paths"]
