"""The Speculation panel in Chromium, on a real session with scripted workers (issue 18).

``speculation_server.py`` serves a session on a git repository with three speculations: one
whose assumptions hold (merged), one whose assumptions fail (discarded, redone) and one whose
blocker never finishes. The panel shows each one's assumptions with their verdicts (the
judge's reasoning and its model call for the prose ones), the waste of the failed one, the
work at stake of the running one and the session's counts and hit rates; the task graph
badges the speculative tasks and a task's detail shows its speculation; the page's cancel
button discards the running one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import Server, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHILD = Path(__file__).with_name("speculation_server.py")


@pytest.mark.parametrize(("width", "scheme"), [(1400, "light"), (390, "dark")])
def test_the_speculation_panel_shows_verdicts_waste_and_cancels(
    serve: list[Server], browser: Browser, tmp_path: Path, width: int, scheme: str
) -> None:
    from playwright.sync_api import expect

    server = Server("--project", str(tmp_path / "project"), port=free_port(), script=CHILD)
    serve.append(server)
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.start())

    panel = page.locator("#speculation-panel")
    client = panel.locator('.spec-card[data-task-id]:has-text("write the client")')
    loader = panel.locator('.spec-card[data-task-id]:has-text("write the loader")')
    examples = panel.locator('.spec-card[data-task-id]:has-text("write the examples")')

    # Held: both assumptions checked and held, the prose one by the judge; merged.
    expect(client).to_have_attribute("data-state", "merged")
    expect(client.locator(".spec-state")).to_have_text("held · merged")
    exact = client.locator(".assumption:has(code.structured)")
    expect(exact).to_contain_text("signature = def parse(text: str) -> Ast")
    expect(exact).to_have_attribute("data-verdict", "holds")
    prose = client.locator(".assumption:has(q.prose)")
    expect(prose).to_have_attribute("data-verdict", "holds")
    expect(prose.locator(".judge")).to_contain_text("scripted:judge")
    expect(prose.locator(".judge")).to_contain_text("decisions say parse raises ValueError")
    expect(client.locator(".saved")).to_contain_text("client.py")

    # Failed: the exact value and the judge both said no; the work was thrown away.
    expect(loader).to_have_attribute("data-outcome", "assumption_failed")
    expect(loader.locator(".spec-state")).to_have_text("failed · discarded")
    wrong = loader.locator(".assumption:has(code.structured)")
    expect(wrong).to_have_attribute("data-verdict", "fails")
    expect(wrong.locator(".why")).to_contain_text("yaml")
    expect(loader.locator(".assumption:has(q.prose) .judge")).to_contain_text("not JSON")
    expect(loader.locator(".waste")).to_contain_text("model calls")
    expect(loader.locator(".waste")).to_contain_text("tokens")

    # Running: the work at stake, and the task graph and the task's detail say so.
    expect(examples).to_have_attribute("data-state", "running")
    expect(examples.locator(".stake")).to_contain_text("tokens")
    expect(examples.locator(".assumption")).to_have_attribute("data-verdict", "pending")
    facts = panel.locator(".spec-summary")
    expect(facts.locator('[data-fact="outcomes"]')).to_contain_text("3 started · 1 held · 1 failed")
    expect(facts.locator('[data-fact="waste"]')).to_contain_text("% of all tokens")
    expect(facts.locator('[data-fact="judge"]')).to_contain_text("2 model calls")
    expect(facts.locator('[data-fact="hit-rates"]')).to_contain_text("blocks/coder")
    node = page.locator('#task-graph g.task-node[data-task="write the examples"]')
    expect(node).to_have_attribute("data-speculation", "running")
    expect(node.locator(".spec-badge")).to_contain_text("speculative")
    merged = page.locator('#task-graph g.task-node[data-task="write the client"]')
    expect(merged).to_have_attribute("data-speculation", "merged")

    ARTIFACTS.mkdir(exist_ok=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
    panel.screenshot(path=str(ARTIFACTS / f"web-speculation-{width}-{scheme}.png"))
    page.screenshot(
        path=str(ARTIFACTS / f"web-speculation-page-{width}-{scheme}.png"), full_page=True
    )

    node.click()
    dialog = page.locator("#task-dialog")
    expect(dialog.locator(".task-speculation .spec-card")).to_have_attribute(
        "data-state", "running"
    )
    dialog.get_by_role("button", name="Close").click()

    # Cancel, with the page's token: discarded, the task back in the queue.
    examples.get_by_role("button", name="Cancel speculation").click()
    expect(page.locator("#toast")).to_contain_text("cancelled")
    expect(examples).to_have_attribute("data-outcome", "cancelled")
    expect(examples.locator(".spec-state")).to_have_text("cancelled")
    expect(examples.get_by_role("button", name="Cancel speculation")).to_have_count(0)
    expect(node).to_have_attribute("data-status", "pending")
    expect(node).to_have_attribute("data-speculation", "cancelled")
    context.close()
