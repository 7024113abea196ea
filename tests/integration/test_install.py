"""Installs that work: the wheel, installed with and without its extras in fresh venvs.

``pip install loomkin`` once left ``python -m loomkin.bench swarm`` dying on a missing dev
dependency. These tests build the wheel, install it as a user would (``uv pip install
'loomkin-….whl[bench,otel]'``, and bare), and run the commands from outside the source
tree (and ``[mcp]``: ``loomkin mcp list`` starts an MCP server written with the SDK). uv's
cache makes them work offline once the packages were fetched; they skip only
when they cannot install, ``CI`` is not set and PyPI is out of reach.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Sequence

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=3):
            return True
    except OSError:
        return False


def _uv(args: Sequence[str], cwd: Path) -> None:
    """Run uv, from its cache alone first (fast, no network), then online."""
    uv = shutil.which("uv")
    if uv is None:
        if os.environ.get("CI"):
            pytest.fail("uv is not on PATH")
        pytest.skip("uv is not on PATH")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    for extra in (["--offline"], []):
        out = subprocess.run(
            [uv, *args, *extra], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        if out.returncode == 0:
            return
    if os.environ.get("CI") or _pypi_reachable():
        pytest.fail(f"uv {' '.join(args)} failed:\n{out.stderr}")
    pytest.skip("uv's cache lacks a package and PyPI is out of reach (not under CI)")


@dataclass(frozen=True, slots=True)
class Venv:
    """A fresh virtual environment with the wheel installed; commands run outside the repo."""

    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        return subprocess.run(
            args, cwd=self.path, env=env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _uv(["build", "--wheel", "--out-dir", str(dist), str(ROOT)], cwd=dist)
    (built,) = dist.glob("loomkin-*.whl")
    return built


def _venv(tmp: Path, requirement: str) -> Venv:
    _uv(["venv", "--quiet", "--python", sys.executable, str(tmp / "venv")], cwd=tmp)
    venv = Venv(tmp / "venv")
    _uv(["pip", "install", "--quiet", "--python", venv.python, requirement], cwd=tmp)
    return venv


@pytest.fixture(scope="module")
def with_extras(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return _venv(tmp_path_factory.mktemp("extras"), f"{wheel}[bench,otel,mcp]")


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return _venv(tmp_path_factory.mktemp("bare"), str(wheel))


def test_the_bench_extra_runs_the_swarm_benchmark(with_extras: Venv) -> None:
    where = with_extras.run(with_extras.python, "-c", "import loomkin; print(loomkin.__file__)")
    assert "site-packages" in where.stdout, where.stderr  # the wheel, not the source tree
    helped = with_extras.run(with_extras.python, "-m", "loomkin.bench", "swarm", "--help")
    assert helped.returncode == 0, helped.stderr
    run = with_extras.run(
        with_extras.python,
        *("-m", "loomkin.bench", "swarm", "--synthetic", "fanout", "--size", "6"),
        *("--agents", "2", "--json"),
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["tasks_completed"] == result["tasks_total"] == 6


def test_the_otel_extra_exports_a_trace(with_extras: Venv) -> None:
    code = (
        "import asyncio, pathlib\n"
        "import opentelemetry.exporter.otlp.proto.http.trace_exporter\n"
        "from loomkin.telemetry import export_session\n"
        "summary = asyncio.run(export_session([], file=pathlib.Path('trace.jsonl')))\n"
        "print(summary.spans, summary.destinations)\n"
    )
    out = with_extras.run(with_extras.python, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0 ('trace.jsonl',)"


MCP_SERVER = ROOT / "tests" / "servers" / "mcp_test_server.py"


def _mcp_project(venv: Venv) -> Path:
    project = venv.path / "project"
    project.mkdir(exist_ok=True)
    (project / "loomkin.toml").write_text(
        f"[mcp.servers.t]\ncommand = {json.dumps(venv.python)}\n"
        f"args = [{json.dumps(str(MCP_SERVER))}]\n"
    )
    return project


def test_the_mcp_extra_starts_a_server_and_lists_its_tools(with_extras: Venv) -> None:
    project = _mcp_project(with_extras)
    loomkin = str(with_extras.path / "bin" / "loomkin")
    out = with_extras.run(loomkin, "mcp", "list", "--project", str(project), "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    (server,) = json.loads(out.stdout)
    assert (server["name"], server["status"]) == ("t", "running")
    assert "t.echo" in {tool["name"] for tool in server["tools"]}


def test_without_extras_each_command_says_what_to_install(bare: Venv) -> None:
    helped = bare.run(str(bare.path / "bin" / "loomkin"), "--help")
    assert helped.returncode == 0, helped.stderr
    swarm = bare.run(bare.python, "-m", "loomkin.bench", "swarm", "--synthetic", "fanout")
    assert swarm.returncode == 2
    assert swarm.stderr == (
        "error: python -m loomkin.bench swarm needs 'looptime', which is not installed: "
        "pip install 'loomkin[bench]'\n"
    )
    code = (
        "import asyncio\n"
        "from loomkin.errors import ConfigError\n"
        "from loomkin.telemetry import export_session\n"
        "try:\n"
        "    asyncio.run(export_session([]))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = bare.run(bare.python, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("not installed: pip install 'loomkin[otel]'")
    listed = bare.run(
        str(bare.path / "bin" / "loomkin"), "mcp", "list", "--project", str(_mcp_project(bare))
    )
    assert listed.returncode == 2
    assert " ".join(listed.stdout.split()) == (
        "error: MCP server 't' ([mcp.servers.t] in loomkin.toml) needs the MCP SDK, which is "
        "not installed: pip install 'loomkin[mcp]'"
    )
