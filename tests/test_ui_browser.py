"""`courier ui` in a real browser: Debian's chromium (driven by Playwright, no browser download) loads the
overview and an experiment page from a real server on loopback; the tables and charts are there, the
console has no error, no request leaves the server, and the page's numbers are `courier results --json`'s.
Slow suite (`make scaleout`): chromium comes from apt-get (`.ci/run`)."""

from __future__ import annotations

import json
import time

import pytest

from optimizely_courier.ui.app import create_app
from tests.conftest import run_cli
from tests.ui_browser import CHROMIUM, chromium, serving
from tests.ui_project import build

pytestmark = [pytest.mark.scaleout,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")]


def test_the_overview_and_an_experiment_page_render_in_chromium_with_their_tables_and_charts_and_no_errors(
        tmp_path):
    project = build(tmp_path / "project")
    results = json.loads(run_cli(project, "results", "checkout", "--json").stdout)
    problems: list[str] = []
    requested: list[str] = []
    started = time.monotonic()
    with serving(create_app(project, allowed_hosts={"127.0.0.1"})) as base, chromium() as browser:
        page = browser.new_page()
        page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
        page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}")
                if response.status >= 400 else None)
        page.on("request", lambda request: requested.append(request.url))

        page.goto(base + "/")
        overview = {"couriers": page.locator("#courier-table tbody tr[data-courier]").count(),
                    "groups": page.locator("div.group[data-group]").count(),
                    "alerts": page.locator("#alerts tbody tr").count(),
                    "styled": page.evaluate("getComputedStyle(document.querySelector('header.top')).display")}

        page.goto(base + "/experiments/checkout")
        rows = page.locator("table.results tbody tr")
        lift_charts = page.locator("svg.lift-chart")
        shown_lift = page.locator("tr.treatment[data-metric='purchase_rate'] td[data-field='lift']").get_attribute(
            "data-value")
        experiment = {"rows": rows.count(), "lift_charts": lift_charts.count(),
                      "bands": page.locator("svg.lift-chart polygon.interval").count(),
                      "always_valid": page.locator("svg.lift-chart polyline.always-valid").count(),
                      "bars": page.locator("svg.units-chart rect.bar").count(),
                      "chart_width": lift_charts.first.bounding_box()["width"]}
    took = time.monotonic() - started
    print(f"\nbrowser test: {took:.1f} s (server, chromium, two pages)")

    assert problems == []
    assert all(url.startswith(base) for url in requested), requested
    assert overview == {"couriers": 1, "groups": 1, "alerts": 1, "styled": "flex"}
    metrics = results["metrics"]
    assert experiment["rows"] == sum(len(metric["variations"]) for metric in metrics)
    assert experiment["lift_charts"] == len(metrics) and experiment["bands"] >= len(metrics)
    assert experiment["always_valid"] == 2 * len(metrics) and experiment["bars"] == 2 * 5
    assert experiment["chart_width"] > 300  # drawn, not collapsed
    [purchase_rate] = [m for m in metrics if m["metric"] == "purchase_rate"]
    assert json.loads(shown_lift) == purchase_rate["variations"][1]["lift"]
