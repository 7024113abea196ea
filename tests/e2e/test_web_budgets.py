"""The Budgets panel raises a limit and resumes the agent the budget paused, in Chromium.

``loomkin serve --demo`` on a project whose ``loomkin.toml`` allows one token: the concierge
pauses on its first model call. The page docks it as waiting; "Raise a limit" leads to the
panel's form; a bad value is refused with a toast naming the field; a new session limit is
posted with the page's token, the concierge resumes and the panel shows the new limit. At
390 px in dark mode the form fits without sideways scrolling.
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


@pytest.mark.parametrize(("width", "scheme"), [(1400, "light"), (390, "dark")])
def test_the_budget_panel_raises_a_limit_and_resumes_the_paused_agent(
    serve: list[Server], browser: Browser, tmp_path: Path, width: int, scheme: str
) -> None:
    from playwright.sync_api import expect

    project = tmp_path / "demo"
    project.mkdir()
    (project / "loomkin.toml").write_text("[budgets]\nsession_tokens = 1\n")
    server = Server("--demo", "--pace", "0.05", "--project", str(project), port=free_port())
    serve.append(server)
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.start())

    concierge = page.locator('#agents .card[data-agent="concierge"]')
    expect(concierge).to_have_attribute("data-status", "paused")
    waiting = page.locator('#prompt-list .budget-wait[data-agent="concierge"]')
    expect(waiting).to_contain_text("budget exceeded")
    expect(page.locator('#budgets .budget[data-scope="session"]')).to_contain_text("/ 1 tokens")

    # The dock's control leads to the form; a value that is not a limit is refused here.
    waiting.get_by_role("button", name="Raise a limit").click()
    field = page.get_by_label("Session limit in tokens")
    expect(field).to_be_focused()
    field.fill("lots")
    page.get_by_role("button", name="Set limits & resume").click()
    expect(page.locator("#toast")).to_contain_text("Session limit in tokens")
    expect(concierge).to_have_attribute("data-status", "paused")

    # A real limit: journaled by the server, the concierge resumes, the panel shows it.
    field.fill("5000000")
    page.get_by_role("button", name="Set limits & resume").click()
    expect(page.locator("#toast")).to_contain_text("resumed concierge")
    expect(concierge).not_to_have_attribute("data-status", "paused")
    expect(waiting).to_have_count(0)
    expect(page.locator('#budgets .budget[data-scope="session"]')).to_contain_text(
        "/ 5,000,000 tokens"
    )
    expect(field).to_have_value("")

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
    ARTIFACTS.mkdir(exist_ok=True)
    panel = page.locator(".panel", has=page.locator("#budget-form"))
    panel.screenshot(path=str(ARTIFACTS / f"web-budgets-{width}-{scheme}.png"))
    context.close()
