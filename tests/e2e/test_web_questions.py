"""A question an agent asks the user is docked in the page with an answer box, in Chromium.

The server runs in a thread of this process (its own event loop) on a session whose agent
``ann`` asks the user one question. The page docks it under "Waiting for you" and counts it
in the tab's title; an empty answer is refused with a toast; a typed answer is posted with
the page's token, the card goes, and the agent gets the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.api import serve
from loomkin.core.events import QuestionAnswered
from loomkin.service import Loomkin, Session
from loomkin.testing.models import user_askers

from .conftest import TOKEN, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

QUESTION = "Which colour should the button be?"


class Hosted:
    """A served session in a thread: its URL, loop and session once ready."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.url = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.session: Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> str:
        self._thread.start()
        assert self._ready.wait(60), "the server did not start"
        return self.url

    def stop(self) -> None:
        if self.loop is not None and self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)

    def history(self) -> list[object]:
        assert self.loop is not None
        assert self.session is not None
        future = asyncio.run_coroutine_threadsafe(self.session.history(), self.loop)
        return [r.event for r in future.result(30)]

    def _run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()  # type: ignore[assignment]
        settings = SessionSettings(bootstrap_orienter=False, question_timeout_s=600.0)
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(
                self.project, model_factory=user_askers(QUESTION), settings=settings
            )
            await session.spawn_agent("ann", "coder")
            await session.send("Make the button.", to="ann")
            self.session = session

            def ready(url: str) -> None:
                self.url = url
                self._ready.set()

            await serve(lk, port=free_port(), token=TOKEN, ready=ready)


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Hosted]:
    project = tmp_path / "project"
    project.mkdir()
    server = Hosted(project)
    try:
        yield server
    finally:
        server.stop()


def test_a_question_to_the_user_is_answered_in_the_page(hosted: Hosted, browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    page.goto(hosted.start())

    card = page.locator("#prompt-list .question")
    expect(card).to_contain_text(QUESTION)
    expect(card).to_contain_text("ann")
    expect(page.locator("#prompt-count")).to_have_text("1")
    expect(page).to_have_title("(1) Loomkin")

    card.get_by_role("button", name="Answer").click()
    expect(page.locator("#toast")).to_contain_text("Write an answer first")
    card.get_by_label("Answer to ann").fill("Blue, like the logo.")
    card.get_by_role("button", name="Answer").click()
    expect(card).to_have_count(0)
    expect(page).to_have_title("Loomkin")

    answered = [e for e in hosted.history() if isinstance(e, QuestionAnswered)]
    assert [(e.answerer, e.answer) for e in answered] == [(None, "Blue, like the logo.")]
