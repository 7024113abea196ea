"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING

import pytest

from loomkin.testing.models import check_requests, take_request_problems

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _no_stray_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    # looptime asks the loop policy for a loop even around sync tests, which creates a loop
    # nobody closes (a ResourceWarning, an error under filterwarnings=error, once gc runs).
    # Giving sync tests a loop we own and close avoids it.
    if inspect.iscoroutinefunction(request.function):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture(autouse=True)
def _valid_transcripts() -> Iterator[None]:
    # Every request a fake model receives, in every test, must be one OpenAI and Anthropic
    # would accept (tool calls answered in order, nothing between a call and its result...):
    # an invalid transcript is journaled, so a real provider would refuse every later call.
    check_requests(True)
    try:
        yield
        problems = take_request_problems()
        if problems:
            shown = "\n  ".join(problems[:20])
            pytest.fail(f"{len(problems)} invalid model request(s):\n  {shown}", pytrace=False)
    finally:
        check_requests(False)
