"""The speculation routes: start a task ahead of its blocker, list, add, cancel, bad input.

The scenario's project is not a git repository, so the workspace is an overlay copy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Harness


async def _tasks(harness: Harness) -> tuple[str, str]:
    session = harness.session
    await session.spawn_agent("ann", "coder")
    blocker = await session.create_task("blocker", assign_to="ann")
    dependent = await session.create_task("dependent", depends_on=(blocker,))
    await session.spawn_agent("spec", "coder")
    return blocker, dependent


async def test_speculate_list_assume_cancel(harness: Harness) -> None:
    blocker, dependent = await _tasks(harness)
    url = f"{harness.base}/tasks/{dependent}"
    body = {"agent": "spec", "assumptions": [{"key": "schema", "value": {"id": "int"}}]}
    started = await harness.client.post(f"{url}/speculate", json=body)
    assert started.status_code == 201, started.text
    out = started.json()
    assert out["state"] == "running"
    assert out["blockers"] == [blocker]
    assert await asyncio.to_thread(Path(out["workspace"]).is_dir)
    assert out["assumptions"][0]["value"] == {"id": "int"}
    assert out["decision"]["speculate"] is True

    added = await harness.client.post(f"{url}/assumptions", json={"text": "ids stay ints"})
    assert added.status_code == 201
    listed = (await harness.client.get(f"{harness.base}/speculations")).json()
    (one,) = listed["speculations"]
    assert len(one["assumptions"]) == 2
    assert listed["summary"]["running"] == 1

    cancelled = await harness.client.post(f"{url}/speculation/cancel", json={})
    assert cancelled.status_code == 202
    await harness.until(lambda: harness.session.speculations()[0].state == "discarded")
    assert not await asyncio.to_thread(Path(out["workspace"]).exists)
    outcome = harness.session.speculations()[0].outcome
    assert outcome is not None
    assert outcome["reason"] == "cancelled"


async def test_speculation_routes_refuse_bad_input(harness: Harness) -> None:
    _blocker, dependent = await _tasks(harness)
    url = f"{harness.base}/tasks/{dependent}"
    none = await harness.client.post(f"{url}/speculate", json={"agent": "spec", "assumptions": []})
    assert none.status_code == 422
    extra = {"agent": "spec", "assumptions": [{"key": "a", "value": 1, "bogus": 2}]}
    assert (await harness.client.post(f"{url}/speculate", json=extra)).status_code == 422
    both = {"agent": "spec", "assumptions": [{"key": "a", "text": "b"}]}
    refused = await harness.client.post(f"{url}/speculate", json=both)
    assert refused.status_code == 422
    assert "either a key" in refused.text
    missing = await harness.client.post(f"{harness.base}/tasks/nope/speculation/cancel", json={})
    assert missing.status_code == 404
    assert harness.session.speculations() == []
