"""Start-up: a CLI command that calls no model must not pay for what it does not use.

SPEC §3.13 and §4: provider SDKs load only when a model of that provider is built, and the
CLI starts in a fraction of a second. Each test imports the CLI in a fresh interpreter and
lists which heavy modules came along; ``python -m loomkin.bench overhead`` has the CPU
figures (the start-up row).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_by_cli_import(modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh ``import loomkin.cli.main`` imports."""
    probe = (
        "import json, sys, loomkin.cli.main; "
        f"print(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_the_cli_loads_no_provider_sdk_and_no_web_stack() -> None:
    # The exact probe of issue #20: anthropic alone cost 2.0 s of CPU, openai 0.5 s.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import loomkin.cli.main, sys; print(sorted(m for m in "
            "('anthropic','openai','fastapi','uvicorn','llama_cpp') if m in sys.modules))",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


def test_the_cli_loads_no_store_driver_no_http_client_no_mcp_and_no_otel() -> None:
    heavy = ("httpx", "httpx2", "psycopg", "sqlalchemy", "mcp", "opentelemetry", "jsonschema")
    assert loaded_by_cli_import(heavy) == []


def test_the_cli_loads_no_runtime_until_a_command_needs_it() -> None:
    heavy = ("loomkin.agents", "loomkin.service", "loomkin.persistence", "pydantic")
    assert loaded_by_cli_import(heavy) == []


def test_the_public_names_still_import_from_the_package() -> None:
    # The top-level API resolves its names on first use; they are the real objects.
    import loomkin
    from loomkin import Loomkin, Session
    from loomkin.service import Loomkin as ServiceLoomkin

    assert Loomkin is ServiceLoomkin
    assert Session.__name__ == "Session"
    assert set(loomkin.__all__) <= set(dir(loomkin))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = loomkin.Nope  # type: ignore[attr-defined]  # checking the error for a bad name
