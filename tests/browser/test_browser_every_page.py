"""Every page of the permission matrix, for every role that may open it, on a phone: in Chromium at 390 px wide the
page must not scroll sideways, its first focusable element is the "Skip to content" link, and axe-core finds no
accessibility violation.

The pages and who may open them come from the matrix itself (tests/clinic/test_permission_matrix.py: each URL name
whose GET answers 200 for a role), filled with client X's records from the matrix's own data set
(matrix_support.build_world), so a page added to the matrix is checked here too. One browser; one context per role,
signed in once (a session made by Django's test client, handed to the browser as its cookie). Responses that are no
HTML page (PDF letters, the progress chart's SVG, CSV and calendar files) are left out. axe-core is vendored under
tests/browser/vendor/axe-core/ and run in each page through the DevTools protocol, outside the content security
policy the page keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from browser_support import ARTIFACTS, TIMEOUT_MS
from clinic.test_permission_matrix import EXPECTED, ROLES
from matrix_support import all_patterns, build_world, login_as

pytestmark = [pytest.mark.browser, pytest.mark.long]

WIDTH = 390  # CSS pixels: a common phone (iPhone 12 to 15)
HEIGHT = 844
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SHOWN = ("dashboard", "portal", "login", "today")  # kept as screenshots, artifacts/browser/every-page/

# Where a page is wider than the screen: the elements that stick out while their parent does not (where the
# overflow starts), outside any container that scrolls or clips on its own; the widest first.
WIDEST = """
(width) => {
  const clips = (el) => {
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const x = getComputedStyle(a).overflowX;
      if (x !== "visible") return true;
    }
    return false;
  };
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (typeof el.className === "string" && el.className.trim()) s += "." + el.className.trim().split(/\\s+/).join(".");
    const text = (el.innerText || el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 50);
    return text ? `${s} "${text}"` : s;
  };
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    const right = el.getBoundingClientRect().right + window.scrollX;
    if (right <= width + 0.5 || clips(el)) continue;
    const parent = el.parentElement.getBoundingClientRect().right + window.scrollX;
    if (parent <= width + 0.5 || el.parentElement === document.body) found.push([Math.round(right), name(el)]);
  }
  found.sort((a, b) => b[0] - a[0]);
  return found.slice(0, 4).map(([right, what]) => `${what} reaches ${right}px`);
}
"""

# The first element a keyboard reaches, and whether the skip link's target exists.
FIRST_FOCUSABLE = """
() => {
  const first = document.querySelector(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])');
  if (!first) return "nothing focusable";
  const target = document.getElementById((first.getAttribute("href") || "").replace(/^#/, ""));
  return `${first.textContent.trim()} -> ${first.getAttribute("href")}${target ? "" : " (missing)"}`;
}
"""
SKIP_LINK = "Skip to content -> #main"

AXE_RUN = """
async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + " " + (n.failureSummary || "").replace(/\\s+/g, " ")),
    count: v.nodes.length,
  }));
}
"""


def pages_for(world: Any) -> Iterator[tuple[str, str, list[str]]]:
    """Each page of the matrix with X's records in its URL, and the roles whose GET of it answers 200."""
    from matrix_support import url_kwargs

    for pattern in all_patterns():
        row = EXPECTED[pattern.name]
        roles = [role for role, expected in zip(ROLES, row, strict=True) if expected.split("/")[0] == "200"]
        if roles:
            yield pattern.name, reverse(pattern.name, kwargs=url_kwargs(pattern, world.x.ids)), roles


def signed_in(browser: Any, base_url: str, user: Any) -> Any:
    """A browser context at phone size holding `user`'s session (none for the anonymous visitor)."""
    from django.conf import settings
    from django.test import Client

    context = browser.new_context(
        base_url=base_url, viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS * 3)
    if user is not None:
        session = login_as(Client(), user).cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}])
    return context


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def test_every_page_fits_a_phone_and_passes_axe(chromium: Any, browser_db: Any, media: None) -> None:
    world = build_world(billing=True)
    axe = AXE.read_text(encoding="utf-8")
    pages = list(pages_for(world))
    assert len(pages) > 60, len(pages)
    too_wide: list[str] = []
    violations: list[str] = []
    other: list[str] = []
    checked = 0
    (ARTIFACTS / "every-page").mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        context = signed_in(chromium, browser_db.url, world.users[role])
        page = context.new_page()
        try:
            for name, url, roles in pages:
                if role not in roles:
                    continue
                where = f"{name} ({url}) as {role}"
                try:
                    response = page.goto(url)
                except Exception as error:  # a download (an attachment) is no page
                    if "Download is starting" in str(error):
                        continue
                    raise
                assert response is not None, where
                if not (response.headers.get("content-type") or "").startswith("text/html"):
                    continue
                if response.status != 200:
                    other.append(f"{where} answered {response.status}, not 200")
                    continue
                checked += 1
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > WIDTH:
                    widest = "; ".join(page.evaluate(WIDEST, WIDTH)) or "no single element found"
                    too_wide.append(f"{where} is {scroll}px wide: {widest}")
                if name in SHOWN:
                    page.screenshot(path=str(ARTIFACTS / "every-page" / f"{role}-{name}.png"), full_page=True)
                first = page.evaluate(FIRST_FOCUSABLE)
                if first != SKIP_LINK:
                    other.append(f"{where}: the first focusable element is {first!r}, not the skip link")
                page.evaluate(axe)
                for v in page.evaluate(AXE_RUN):
                    violations.append(
                        f"{where}: {v['id']} ({v['impact']}) {v['help']}, {v['count']} element(s): "
                        + " | ".join(v["nodes"])
                    )
        finally:
            context.close()
    assert checked > 150, checked
    problems = too_wide + violations + other
    assert not problems, f"{len(too_wide)} too wide, {len(violations)} axe violations:\n" + "\n".join(problems)
    print(f"checked {checked} pages at {WIDTH}px with axe-core")


@pytest.mark.parametrize("script", [True, False], ids=["with-javascript", "without-javascript"])
def test_the_menu_folds_on_a_phone_and_the_skip_link_leads_to_the_content(
    chromium: Any, browser_db: Any, live_therapist: Any, script: bool
) -> None:
    """On a phone the main menu is one "Menu" button that opens it; on a wide screen it is open; with or without
    JavaScript. The first Tab reaches "Skip to content", which moves the focus to the page's content."""
    from django.conf import settings
    from django.test import Client

    session = login_as(Client(), live_therapist.user).cookies[settings.SESSION_COOKIE_NAME].value
    base_url = browser_db.url
    for width, folded in ((WIDTH, True), (1280, False)):
        context = chromium.new_context(
            base_url=base_url, viewport={"width": width, "height": HEIGHT}, java_script_enabled=script
        )
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}])
        page = context.new_page()
        try:
            page.goto(reverse("dashboard"))
            page.keyboard.press("Tab")
            focused = page.evaluate("[document.activeElement.tagName, document.activeElement.textContent.trim()]")
            assert focused == ["A", "Skip to content"], (width, script, focused[0], focused[1][:40])
            page.keyboard.press("Enter")
            assert page.evaluate("[location.hash, document.activeElement.id]") == ["#main", "main"], (width, script)
            clients = page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients")
            menu = page.locator("summary", has_text="Menu")
            assert clients.is_visible() is not folded, (width, script)
            assert menu.is_visible() is folded, (width, script)
            if folded:
                menu.click()
                assert clients.is_visible()
                menu.click()
                assert not clients.is_visible()
        finally:
            context.close()
