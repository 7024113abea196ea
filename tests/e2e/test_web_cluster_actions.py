"""Budgets and speculations of a session a worker runs, from the page, in a real Chromium.

``cluster_actions_server.py`` runs a worker (scripted agents) and the web app of its cluster
(``serve --bus --no-host``: a runtime that only watches the shared store) on the real NATS
server and a scratch Postgres schema. The session on the worker has a running speculation:
the Speculation panel shows it and cancels it, and the Budgets form sets limits the worker
applies; the server forwards both to the worker as actions over NATS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import Server, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHILD = Path(__file__).with_name("cluster_actions_server.py")


def test_the_page_cancels_a_speculation_and_sets_limits_of_a_session_on_a_worker(
    shared: tuple[str, str, str], serve: list[Server], browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    bus, store, cluster = shared
    server = Server(
        *("--bus", bus, "--store", store, "--cluster", cluster),
        *("--project", str(tmp_path / "project")),
        port=free_port(),
        script=CHILD,
    )
    serve.append(server)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.start())

    expect(page.locator("#cluster")).to_be_visible()
    expect(page.locator("#connection-text")).to_have_text("live")  # drivable, not read-only
    panel = page.locator("#speculation-panel")
    examples = panel.locator('.spec-card[data-task-id]:has-text("write the examples")')
    expect(examples).to_have_attribute("data-state", "running")
    expect(examples.locator(".assumption")).to_contain_text("docs_format")
    expect(examples.locator(".stake")).to_contain_text("tokens")

    # Limits: the worker's session takes them; the panel shows its live budgets.
    page.get_by_label("Session limit in USD").fill("5")
    page.get_by_label("Each team limit in tokens").fill("90000")
    page.get_by_role("button", name="Set limits & resume").click()
    expect(page.locator("#toast")).to_contain_text("Limits set")
    budgets = page.locator("#budgets")
    expect(budgets.locator('.budget[data-scope="session"]')).to_contain_text("of $5.00")
    expect(budgets.locator('.budget[data-scope="team"]')).to_contain_text("/ 90,000 tokens")
    expect(page.get_by_label("Session limit in USD")).to_have_value("")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-cluster-actions-1400.png"), full_page=True)

    # Cancel, forwarded to the worker: discarded there, and the panel says so.
    examples.get_by_role("button", name="Cancel speculation").click()
    expect(page.locator("#toast")).to_contain_text("cancelled")
    expect(examples).to_have_attribute("data-outcome", "cancelled")
    expect(examples.get_by_role("button", name="Cancel speculation")).to_have_count(0)
    node = page.locator('#task-graph g.task-node[data-task="write the examples"]')
    expect(node).to_have_attribute("data-speculation", "cancelled")
    panel.screenshot(path=str(ARTIFACTS / "web-cluster-actions-speculation-1400.png"))
    context.close()
