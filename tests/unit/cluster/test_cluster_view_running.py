"""The web app's view of a cluster keeps a running session when a key listing comes back short.

Listing a bucket's keys goes through a watcher, which a busy NATS server can end early: the
view then thought the session had stopped, dropped its open permission prompt and showed the
session as not running, and a page waiting to answer that prompt waited for good.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from loomkin.api import ClusterView
from loomkin.cluster import Placement
from loomkin.errors import NotFound
from loomkin.service import Loomkin

if TYPE_CHECKING:
    from loomkin.cluster import ClusterClient


class ShortListing:
    """A cluster whose placements listing misses ``s_1``, though its own entry says running."""

    def __init__(self) -> None:
        self.entries = {
            "s_1": Placement(session_id="s_1"),
            "s_2": Placement(session_id="s_2", status="done"),
        }
        self.listed: list[Placement] = list(self.entries.values())

    async def placements(self) -> list[Placement]:
        return self.listed

    async def placement(self, session_id: str) -> Placement:
        if session_id not in self.entries:
            raise NotFound(session_id)
        return self.entries[session_id]


async def test_a_session_missing_from_one_listing_still_runs_and_keeps_its_prompt() -> None:
    cluster = ShortListing()
    async with await Loomkin.open("memory:") as watcher:
        view = ClusterView(cast("ClusterClient", cluster), watcher)
        await view.refresh()
        assert view.running() == ["s_1"]

        async def reply(_decision: str) -> None:
            return None

        view._on_ask({"request_id": "perm_1", "session_id": "s_1"}, reply)
        cluster.listed = []  # the listing came back short
        await view.refresh()
        assert view.running() == ["s_1"]
        assert await view.wait_prompt("s_1") == "perm_1"

        cluster.entries["s_1"] = Placement(session_id="s_1", status="done")  # it did stop
        await view.refresh()
        assert view.running() == []
