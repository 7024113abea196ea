"""Numbers and names past what the store can hold are 4xx, never 500 (on SQLite, as served)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from loomkin.api import LaunchPolicy, create_app
from loomkin.service import Loomkin

from .conftest import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with await Loomkin.open(f"sqlite:///{tmp_path / 'store.db'}") as loomkin:
        session = await loomkin.open_session(tmp_path, model="ollama:llama3")
        app = create_app(loomkin, launch=LaunchPolicy(roots=(tmp_path,)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield http, f"/api/sessions/{session.session_id}"


@pytest.mark.parametrize("after", [2**63, 2**64, 10**30, -1, "x", "1e3"])
async def test_after_past_the_stores_range_is_a_422(
    client: tuple[httpx.AsyncClient, str], after: object
) -> None:
    http, base = client
    for path in (f"{base}/feed", f"{base}/events"):
        response = await http.get(path, params={"after": str(after), "follow": "false"})
        assert response.status_code == 422, (path, after, response.text)


@pytest.mark.parametrize(
    "last_event_id", [str(2**63), str(2**64), "-1", "abc", "²", "1" * 5000, "1.5"]
)
async def test_a_bad_last_event_id_is_a_422(
    client: tuple[httpx.AsyncClient, str], last_event_id: str
) -> None:
    http, base = client
    response = await http.get(
        f"{base}/events",
        params={"follow": "false"},
        headers=[(b"last-event-id", last_event_id.encode("latin-1"))],
    )
    assert response.status_code == 422, (last_event_id[:20], response.text)
    assert len(response.text) < 500


async def test_the_largest_position_is_fine(client: tuple[httpx.AsyncClient, str]) -> None:
    http, base = client
    top = str(2**63 - 1)
    feed = await http.get(f"{base}/feed", params={"after": top})
    assert feed.status_code == 200
    assert feed.json() == {"rows": [], "last_position": 2**63 - 1}
    events = await http.get(
        f"{base}/events", params={"follow": "false"}, headers={"last-event-id": f" {top} "}
    )
    assert events.status_code == 200


@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_a_body_nested_past_any_real_request_is_a_422_not_a_500(
    client: tuple[httpx.AsyncClient, str], opener: str
) -> None:
    http, base = client
    closer = "]" if opener == "[" else "}"
    body = '{"text": ' + opener * 50_000 + "1" * (opener != "[") + closer * 50_000 + "}"
    response = await http.post(
        f"{base}/messages", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text[:300]
    assert "nests more than 64 levels" in response.text
