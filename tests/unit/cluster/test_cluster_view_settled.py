"""The web app's view of a cluster remembers answered prompts for a bounded time and count.

An answered prompt's id is remembered so that the worker sending it again (to a listener that
came late, or after a reconnect) does not show it on the page a second time. The ids used to
be kept for good; they are now forgotten once older than ``settled_for_s`` (longer than any
worker still asks with them) and beyond ``settled_max``, oldest first.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import pytest

from loomkin.api import ClusterView
from loomkin.cluster import Placement
from loomkin.errors import UserError
from loomkin.service import Loomkin

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.cluster import ClusterClient


class OneSession:
    """A cluster that runs ``s_1``."""

    async def placements(self) -> list[Placement]:
        return [Placement(session_id="s_1")]

    async def placement(self, session_id: str) -> Placement:
        return Placement(session_id=session_id)


@pytest.fixture
async def watcher() -> AsyncIterator[Loomkin]:
    async with await Loomkin.open("memory:") as loomkin:
        yield loomkin


async def view_of(
    watcher: Loomkin, *, settled_for_s: float = 3600.0, settled_max: int = 10_000
) -> ClusterView:
    client = cast("ClusterClient", OneSession())
    view = ClusterView(client, watcher, settled_for_s=settled_for_s, settled_max=settled_max)
    await view.refresh()
    return view


async def no_reply(_decision: str) -> None:
    return None


def ask(view: ClusterView, request_id: str) -> None:
    """The worker sends the prompt ``request_id`` (again)."""
    view._on_ask({"request_id": request_id, "session_id": "s_1"}, no_reply)


def shown(view: ClusterView) -> list[str]:
    return sorted(view._asks)


async def answer(view: ClusterView, request_id: str) -> None:
    ask(view, request_id)
    await view.answer("s_1", request_id, "deny")


@pytest.mark.looptime
async def test_an_answered_prompt_is_not_shown_again_until_it_is_forgotten(
    watcher: Loomkin,
) -> None:
    view = await view_of(watcher, settled_for_s=600.0)
    await answer(view, "perm_1")
    await asyncio.sleep(300)  # virtual time: the worker may still send it again
    ask(view, "perm_1")
    assert shown(view) == []

    await asyncio.sleep(301)  # past settled_for_s: the next answer forgets perm_1
    await answer(view, "perm_2")
    assert list(view._settled) == ["perm_2"]
    ask(view, "perm_1")  # no worker asks that late; if one did, the page would show it
    assert shown(view) == ["perm_1"]
    ask(view, "perm_2")
    assert shown(view) == ["perm_1"]


@pytest.mark.looptime
async def test_at_most_settled_max_answered_prompts_are_remembered(watcher: Loomkin) -> None:
    view = await view_of(watcher, settled_max=3)
    for n in range(1, 6):
        await answer(view, f"perm_{n}")
    assert list(view._settled) == ["perm_3", "perm_4", "perm_5"]
    for n in range(1, 6):
        ask(view, f"perm_{n}")
    assert shown(view) == ["perm_1", "perm_2"]


async def test_bounds_that_would_keep_nothing_are_refused(watcher: Loomkin) -> None:
    client = cast("ClusterClient", OneSession())
    with pytest.raises(UserError, match="positive time"):
        ClusterView(client, watcher, settled_for_s=0)
    with pytest.raises(UserError, match="at least one"):
        ClusterView(client, watcher, settled_max=0)
