"""``loomkin store check`` and the lease at the command line (issue #15)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from loomkin.cli.main import cli
from loomkin.demo import demo_model
from loomkin.ids import SessionId
from loomkin.persistence import open_store
from loomkin.service import Loomkin
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

if TYPE_CHECKING:
    from pathlib import Path


def _store(project: Path) -> Path:
    return project / ".loomkin" / "loomkin.db"


def _session(url: str, project: Path) -> str:
    """A stored (demo-model) session with a few events; returns its id."""

    async def make() -> str:
        async with await Loomkin.open(url) as lk:
            session = await lk.open_session(project, model_factory=demo_model)
            await session.spawn_agent("alice", "coder")
            return session.session_id

    return asyncio.run(make())


def test_store_check_of_a_sound_store_says_ok(tmp_path: Path) -> None:
    _session(f"sqlite:///{_store(tmp_path)}", tmp_path)
    result = CliRunner().invoke(cli, ["store", "check", "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 3 events, chain head ")


def test_store_check_names_the_first_damaged_position(tmp_path: Path) -> None:
    _session(f"sqlite:///{_store(tmp_path)}", tmp_path)
    with sqlite3.connect(_store(tmp_path)) as db:  # a payload changed behind the log's back
        db.execute("UPDATE events SET data = replace(data, 'alice', 'mallory') WHERE position = 3")
    result = CliRunner().invoke(cli, ["store", "check", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert "damaged at position 3" in result.output
    assert "Traceback" not in result.output


def test_store_check_of_a_missing_or_empty_store_is_a_one_line_error(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["store", "check", "--project", str(tmp_path)])
    assert missing.exit_code == 2
    assert "no store at" in missing.output
    assert not _store(tmp_path).exists()  # checking never creates a store
    empty = tmp_path / "empty.db"
    empty.touch()
    result = CliRunner().invoke(cli, ["store", "check", "--store", f"sqlite:///{empty}"])
    assert result.exit_code == 2
    assert result.output.startswith("error: empty store file")  # one message (rich wraps it)
    assert "Traceback" not in result.output


@pytest.mark.postgres
def test_store_check_on_postgres(tmp_path: Path) -> None:
    server = postgres_test_url()

    async def scratch() -> str:
        async with scratch_postgres_schema(server) as schema:
            url = f"{server}{'&' if '?' in server else '?'}schema={schema}"
            await asyncio.to_thread(_session, url, tmp_path)  # (its own event loop)
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["store", "check", "--store", url]
            )
            return result.output

    assert asyncio.run(scratch()).startswith("ok: 3 events")


def test_a_second_resume_names_the_holder_and_take_over_takes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{_store(tmp_path)}"
    session_id = _session(url, tmp_path)

    async def held_elsewhere() -> None:
        store = await open_store(url)
        try:
            await store.acquire_lease(
                SessionId(session_id), "other-run", ttl_s=600, host="build-42", pid=4242
            )
        finally:
            await store.close()

    asyncio.run(held_elsewhere())
    refused = CliRunner().invoke(cli, ["resume", "--project", str(tmp_path), "--yes"])
    assert refused.exit_code == 2
    text = " ".join(refused.output.split())
    assert "'other-run' on host 'build-42' (pid 4242)" in text
    assert "--take-over" in text
    taken = CliRunner().invoke(cli, ["resume", "--project", str(tmp_path), "--yes", "--take-over"])
    assert taken.exit_code == 0, taken.output
    assert f"resumed session {session_id}" in " ".join(taken.output.split())


def test_take_over_needs_a_stored_session_to_take(tmp_path: Path) -> None:
    for command in (["run", "goal"], ["serve"]):
        result = CliRunner().invoke(
            cli, [*command, "--project", str(tmp_path), "--take-over"], env={}
        )
        assert result.exit_code == 2
        assert "--take-over needs --session" in result.output
