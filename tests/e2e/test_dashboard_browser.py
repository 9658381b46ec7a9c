"""The dashboard in a real browser: headless Debian Chromium driven by Playwright, against the local server.

The server is started in-test over a real trained tiny version and a real embedded Redis. Checks: the graph
renders with live numbers (and "no data yet" before any), hover shows a node's details, a traced request appears
(a known user, an unknown user as cold start, a bad id as the API's 400), and the page survives a degraded stage.
With TASTEBUD_UPDATE_SCREENSHOT=1 the final screenshot is written to docs/dashboard.png.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tastebud.adapters.deferred_stock import DeferredStock
from tastebud.api.http import create_handler
from tastebud.errors import DependencyError

from servers import threaded_server

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("TASTEBUD_CHROMIUM", "/usr/bin/chromium"))
# Flags that work in this sandbox (no GPU, no network beyond loopback, no user namespaces).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or `make test`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def base_url(service) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with threaded_server(lambda: create_handler(lambda: service)) as url:
        yield url


def recommend(base_url: str, user_id: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{base_url}/v1/recommendations", method="POST",
                                     data=json.dumps({"user_id": user_id, "k": 10}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def node_data(page: Any, node_id: str) -> dict[str, Any]:
    return page.evaluate("id => window.tastebudGraph.getElementById(id).data()", node_id)  # type: ignore[no-any-return]


def wait_for_refresh(page: Any) -> None:
    count = int(page.evaluate("Number(document.body.dataset.refreshes || 0)"))
    page.wait_for_function(f"Number(document.body.dataset.refreshes || 0) > {count}", timeout=10_000)


def hover_node(page: Any, node_id: str) -> None:
    box = page.locator("#cy").bounding_box()
    position = page.evaluate("id => window.tastebudGraph.getElementById(id).renderedPosition()", node_id)
    page.mouse.move(box["x"] + position["x"], box["y"] + position["y"])


def test_dashboard_in_chromium(browser: Any, base_url: str, service, active_user: str,  # type: ignore[no-untyped-def]
                               tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base_url}/")  # the dashboard is the root page too
    assert page.title() and page.url == f"{base_url}/"
    page.wait_for_function("Number(document.body.dataset.refreshes || 0) >= 1", timeout=10_000)

    # Before any request: every stage says so, nothing is drawn as 0.
    assert page.evaluate("window.tastebudGraph.nodes().length") == 15
    assert page.evaluate("window.tastebudGraph.edges().length") == 14
    assert "no data yet" in node_data(page, "rerank")["label"]
    assert node_data(page, "rerank")["budget"] == "nodata"

    # Live numbers once requests are served.
    for _ in range(5):
        recommend(base_url, active_user)
    wait_for_refresh(page)
    for node in ("user_tower", "knn", "rerank", "fairness", "stock", "lambda"):
        data = node_data(page, node)
        assert "p50" in data["label"] and "p99" in data["label"] and "ms" in data["label"], data
        assert data["budget"] in ("ok", "warn", "over")
    assert "target 25 ms" in node_data(page, "rerank")["label"]
    assert "target 70 ms" in node_data(page, "knn")["label"]

    # Hover: the AWS service, what the stage does, its numbers and degraded rate.
    hover_node(page, "knn")
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible", timeout=5_000)
    text = tooltip.inner_text()
    assert "Amazon OpenSearch k-NN" in text and "ScaNN" in text and "p99 (window)" in text
    assert "degraded rate" in text and "0.0%" in text and "candidates: ann" in text
    hover_node(page, "hotswap")
    page.wait_for_function("document.getElementById('tooltip').innerText.includes('Step Functions')")

    # Trace a known user: its flow, stage times and items with titles appear.
    page.fill("#trace-user", active_user)
    page.click("#trace-go")
    page.wait_for_selector("#trace-head", timeout=10_000)
    trace = page.locator("#trace").inner_text()
    assert active_user in trace and "Stage times" in trace and "Re-ranking" in trace and "Stock filter" in trace
    assert "ann:" in trace and "history:" in trace
    assert page.locator("#cold-start").count() == 0
    titles = page.evaluate("Array.from(document.querySelectorAll('#trace-page tr td:nth-child(2)'))"
                           ".map(td => td.innerText)")
    assert len(titles) == 10 and all(t.strip() for t in titles)
    assert "traced:" in node_data(page, "rerank")["label"]
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # An unknown user is a cold-start trace, not an error.
    page.fill("#trace-user", "nobody-at-all-42")
    page.click("#trace-go")
    page.wait_for_selector("#cold-start", timeout=10_000)
    assert page.locator("#trace-error").is_hidden()

    # A bad id: the API's 400 message is shown.
    page.fill("#trace-user", "   ")
    page.click("#trace-go")
    error = page.locator("#trace-error")
    error.wait_for(state="visible", timeout=10_000)
    assert "400" in error.inner_text() and "user_id" in error.inner_text()

    # A degraded stage (Redis stock checks failing): the page keeps working and marks the stage.
    def broken(item_ids: Any) -> Any:
        raise DependencyError("stock", "redis timeout")

    service.stock.out_of_stock = broken
    service.stock.begin_out_of_stock = lambda item_ids: DeferredStock(lambda: broken(item_ids))  # the request path
    page.fill("#trace-user", active_user)
    page.click("#trace-go")
    page.wait_for_selector("#trace .tag.degraded", timeout=10_000)
    wait_for_refresh(page)
    assert "degraded" in page.evaluate("window.tastebudGraph.getElementById('stock').classes()")
    hover_node(page, "stock")
    page.wait_for_function("document.getElementById('tooltip').innerText.includes('degraded rate')")
    assert "0.0%" not in page.locator("#tooltip").inner_text().split("degraded rate")[1].splitlines()[0]
    assert not errors, errors

    if os.environ.get("TASTEBUD_UPDATE_SCREENSHOT"):
        page.mouse.move(0, 0)
        page.fill("#trace-user", active_user)
        del service.stock.out_of_stock
        del service.stock.begin_out_of_stock
        page.click("#trace-go")
        page.wait_for_function("!document.querySelector('#trace .tag.degraded')", timeout=10_000)
        hover_node(page, "rerank")
        page.locator("#tooltip").wait_for(state="visible")
        page.screenshot(path=str(tmp_path / "final.png"), full_page=True)
        shutil.copy(tmp_path / "final.png", ROOT / "docs" / "dashboard.png")
    page.close()
