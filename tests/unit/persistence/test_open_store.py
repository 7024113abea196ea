from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ConfigError, CorruptStoreError, StoreError
from loomkin.persistence import MemoryStore, PostgresStore, SqliteStore, check_store, open_store
from loomkin.testing.conformance import task_event

if TYPE_CHECKING:
    from pathlib import Path


def _sep(url: str) -> str:
    return "&" if "?" in url else "?"


async def test_memory_url() -> None:
    store = await open_store("memory:")
    assert isinstance(store, MemoryStore)
    await store.close()


async def test_sqlite_url_and_plain_path_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "loomkin.db"
    first = await open_store(f"sqlite://{path}")
    assert isinstance(first, SqliteStore)
    assert first.path == path
    await first.append([task_event("a")])
    await first.close()
    second = await open_store(str(path))
    assert isinstance(second, SqliteStore)
    assert await second.last_position() == 1
    await second.close()


async def test_relative_plain_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store(".loomkin/loomkin.db")
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / ".loomkin" / "loomkin.db"
    await store.close()


async def test_sqlite_synchronous_option(tmp_path: Path) -> None:
    store = await open_store(f"sqlite://{tmp_path}/x.db?synchronous=full")
    assert isinstance(store, SqliteStore)
    assert await store._run(lambda: store._conn.execute("PRAGMA synchronous").fetchone()) == (2,)
    await store.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("mysql://db/x", "unsupported store URL 'mysql://db/x'"),
        ("memory:extra", "unsupported store URL 'memory:extra'"),
        ("sqlite:relative.db", "unsupported store URL 'sqlite:relative.db'"),
        ("sqlite://host/x.db", "'sqlite://host/x.db' must be sqlite:///"),
        ("sqlite:///", "must be sqlite:///"),
        ("sqlite:////tmp/x.db?synchronous=OFF", "synchronous must be NORMAL or FULL"),
        ("sqlite:////tmp/x.db?cache=big", "unsupported or repeated option 'cache'"),
        ("postgresql://127.0.0.1/test?schema=a&schema=b", "'schema' more than once"),
        ("postgresql://127.0.0.1/test?schema=Bad-Name", "schema 'Bad-Name'"),
    ],
)
async def test_bad_urls_are_config_errors_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await open_store(url)
    assert problem in str(caught.value)


async def test_bad_url_errors_hide_passwords() -> None:
    with pytest.raises(ConfigError) as caught:
        await open_store("mysql://me:s3cret@db/x")
    assert "s3cret" not in str(caught.value)
    assert "me:***@db" in str(caught.value)


@pytest.mark.postgres
async def test_postgres_url_with_schema(pg_url: str, pg_schema: str) -> None:
    store = await open_store(f"{pg_url}{_sep(pg_url)}schema={pg_schema}")
    assert isinstance(store, PostgresStore)
    await store.append([task_event("a")])
    await store.close()
    short_scheme = pg_url.replace("postgresql", "postgres", 1)
    again = await open_store(f"{short_scheme}{_sep(pg_url)}schema={pg_schema}")
    assert await again.last_position() == 1
    await again.close()


async def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        await open_store("postgresql://127.0.0.1:1/test?connect_timeout=2")


async def test_check_store_reports_on_a_sound_store(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = await open_store(str(path))
    await store.append([task_event("a"), task_event("b")])
    await store.close()
    report = await check_store(str(path))
    assert (report.ok, report.events_checked, report.last_good_position) == (True, 2, 2)
    assert report.summary().startswith("ok: 2 events, chain head ")
    assert (await check_store("memory:")).ok


async def test_check_store_raises_for_a_file_that_is_no_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(CorruptStoreError, match="empty store file"):
        await check_store(str(path))
