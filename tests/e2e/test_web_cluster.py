"""The web app of a cluster (``loomkin serve --bus``) in a real headless Chromium.

A worker process (scripted models) and ``loomkin serve --bus --no-host`` share the real NATS
server and a scratch Postgres schema: the page's Cluster panel shows the worker; a session
opened from the page is placed on it, the panel says where it runs, and the session's
permission prompts reach the page and are answered from it.
"""

from __future__ import annotations

import contextlib
import signal
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.failover import _reap, _spawn

from .conftest import Server, free_port

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(240)]

TTL = "2"


def test_the_cluster_panel_shows_the_worker_and_where_a_session_runs(
    shared: tuple[str, str, str], serve: list[Server], browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    bus, store, cluster = shared
    project = tmp_path / "project"
    project.mkdir()
    worker, worker_id = _spawn(["worker", bus, store, cluster, TTL, "0.3"])
    try:
        server = Server(
            *("--bus", bus, "--store", store, "--cluster", cluster, "--lease-ttl", TTL),
            *("--no-host", "--project", str(project)),
            port=free_port(),
        )
        serve.append(server)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        page.goto(server.start())

        panel = page.locator("#cluster")
        expect(panel).to_be_visible()
        expect(page.locator("#cluster-name")).to_have_text(cluster)
        expect(panel.locator(f'[data-worker="{worker_id}"]')).to_contain_text("0 agents")

        # No session yet: open one from the page; it is placed on the worker.
        page.fill('#start-form input[name="project"]', str(project))
        page.click("#start-form button[type=submit]")
        running = panel.locator('.placement[data-status="running"]')
        expect(running).to_have_count(1)
        expect(running).to_contain_text(f"on {worker_id}")
        expect(page.locator("#connection-text")).to_have_text("live")  # drivable, not read-only
        expect(page.locator("#agents .card").first).to_be_visible()

        # Its agents ask before writing: the prompt reaches the page, and the page answers.
        prompt = page.locator("#prompt-list .prompt").first
        expect(prompt).to_be_visible()
        request_id = prompt.get_attribute("data-request-id")
        newest = page.evaluate(
            "Math.max(0, ...[...document.querySelectorAll('#feed li')]"
            ".map((li) => +li.dataset.position || 0))"
        )
        prompt.get_by_role("button", name="Allow always").click()
        # What the worker does next reaches the page's live feed (pulled from the store).
        page.wait_for_function(
            "(p) => [...document.querySelectorAll('#feed li')]"
            ".some((li) => +li.dataset.position > p)",
            arg=newest,
        )
        expect(page.locator(f'#prompt-list .prompt[data-request-id="{request_id}"]')).to_have_count(
            0
        )
        expect(panel.locator(f'[data-worker="{worker_id}"]')).not_to_contain_text("0 agents")
        # The only worker runs every agent's model calls and shell: the cards say where.
        expect(page.locator("#agents .card .worker").first).to_contain_text(f"on {worker_id}")
        page.screenshot(path=str(tmp_path / "cluster.png"))
    finally:
        for running_server in serve:
            running_server.stop()
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        _reap(worker)
