from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_implicit_event_loop() -> None:
    # pytest-asyncio 1.x asks for "the current loop" before each async test; on Python 3.11
    # that call creates (and leaks) a loop when none was ever set, which filterwarnings=error
    # turns into a failure once a sync test ran first. Setting "no loop" makes the call raise
    # instead, which pytest-asyncio handles. Belongs in tests/conftest.py for the whole suite.
    asyncio.set_event_loop(None)
