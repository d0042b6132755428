"""`courier ui`: every page over HTTP on a generated project (Starlette's TestClient, and a real server on
loopback where processes meet), what the pages show against the commands that show the same (`courier
status`, `history`, `results --json`, `feeds diff`, SQL), the read-only guard, the token, secrets, and the
warehouse being written by a courier run or held by another process while pages are read."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from optimizely_courier.ui.app import create_app
from tests.conftest import query, run_cli
from tests.test_busy_warehouse import courier, finish, wait_stopped
from tests.ui_project import add_day, build

starlette_testclient = pytest.importorskip("starlette.testclient")
HOST = "http://127.0.0.1"
DECISIONS = "Optimizely:Decisions"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Built once for the module; tests that change it work on a copy (`copy`)."""
    return build(tmp_path_factory.mktemp("ui") / "project")


@pytest.fixture
def copy(project, tmp_path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(project, target, symlinks=True)
    return target


def client(root: Path, **options) -> starlette_testclient.TestClient:
    return starlette_testclient.TestClient(create_app(root, **options), base_url=HOST)


class Cells(HTMLParser):
    """Every element's attributes and text, for the assertions (no scraping library)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        element = {"tag": tag, **{name: value or "" for name, value in attrs}, "text": ""}
        self.elements.append(element)
        if tag not in ("br", "input", "link", "meta", "img", "rect", "circle", "line", "polyline", "polygon", "path"):
            self._open.append(element)

    def handle_endtag(self, tag):  # noqa: ANN001
        while self._open and self._open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):  # noqa: ANN001
        for element in self._open:
            element["text"] += data

    def find(self, **attrs) -> list[dict]:
        return [e for e in self.elements if all(e.get(k) == v for k, v in attrs.items())]


def cli_json(root: Path, *args: str):  # noqa: ANN201
    result = run_cli(root, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- overview and courier ---------------------------------------------------------------------------------------

def test_overview_shows_each_couriers_status_its_groups_next_runs_and_the_failed_run_as_an_alert(project):
    page = client(project).get("/")
    [status] = cli_json(project, "status")

    assert page.status_code == 200
    cells = Cells(page.text)
    [row] = cells.find(tag="tr", **{"data-courier": "optimizely"})
    assert "failed" in row["text"] and status["last_run"]["status"] == "failed"
    assert status["landed"]["newest_partition"] in row["text"] and f"{status['landed']['rows']:,}" in row["text"]
    assert status["freshness"]["status"] in row["text"]
    for table in status["domain_tables"]:
        assert f"{table['rows']:,} rows" in row["text"] and f"{table['files_to_build']} to build" in row["text"]
    [group] = cells.find(tag="div", **{"data-group": "nightly"})
    assert "America/Los_Angeles" in group["text"] and group["text"].count("optimizely 2026-") >= 3
    assert re.search(r"08:30:00\s*\S+ 1[56]:30:00", group["text"])  # its zone's 08:30 and the UTC time beside it
    assert "success" in group["text"] and "optimizely 2026-11-25" in group["text"]  # its last run
    [alerts] = cells.find(tag="section", id="alerts")
    assert "source data not ready: decisions 2026-12-30" in alerts["text"]
    assert "data-refresh" not in page.text  # nothing runs: the page does not reload itself


def test_courier_page_lists_every_run_with_its_files_rows_and_error_and_the_raw_and_domain_tables(project):
    page = client(project).get("/couriers/optimizely")
    history = cli_json(project, "history")

    assert page.status_code == 200
    cells = Cells(page.text)
    runs = cells.find(tag="tr", **{"class": "run"})
    assert [run["data-run"] for run in runs] == [run["run_id"] for run in history]
    landing = next(run for run in history if run["status"] == "success" and sum(run["rows"].values()))
    row = next(run for run in runs if run["data-run"] == landing["run_id"])
    assert f"{sum(landing['rows'].values()):,}" in row["text"]
    assert "source data not ready: decisions 2026-12-30" in page.text  # the failed run's error
    [raw] = cells.find(tag="section", id="raw-tables")
    for tag in ("decisions", "conversions"):
        [(rows, files)] = query(project, f"select count(*), count(distinct _file) from raw_optimizely.{tag}")
        assert re.search(rf"raw_optimizely\.{tag}\s*{rows:,}\s*{files:,}\s*\d\s*2026-11-29", raw["text"])
    assert cells.find(tag="a", href="/tables/Optimizely%3ADecisions")


def test_unknown_couriers_tables_and_experiments_are_not_found_and_only_get_is_allowed(project):
    app = client(project)
    for path in ("/couriers/nope", "/tables/Nope:Nothing", "/experiments/nope", "/experiments/nope/results.json",
                 "/no/such/page"):
        assert app.get(path).status_code == 404, path
    assert Cells(app.get("/couriers/nope").text).find(tag="p")[0]["text"] == "no courier 'nope'; couriers: optimizely"
    assert app.post("/").status_code == 405 and app.delete("/couriers/optimizely").status_code == 405


# -- domain tables -------------------------------------------------------------------------------------------------

def test_domain_table_page_shows_types_tags_pii_counts_and_a_profile_per_column_as_sql_finds_them(project):
    page = client(project).get(f"/tables/{DECISIONS}")

    assert page.status_code == 200
    cells = Cells(page.text)
    [(rows, visitors, nulls, first, last)] = query(project, f'select count(*), count(distinct visitor_id), '
                                                            f'count(*) - count(country), min(decided_at), '
                                                            f'max(decided_at) from domain."{DECISIONS}"')
    [(rejected,)] = query(project, f'select count(*) from domain."{DECISIONS}__rejected"')
    assert cells.find(tag="span", id="row-count")[0]["text"] == f"{rows:,} rows"
    assert cells.find(tag="span", id="rejected-count")[0]["text"] == f"{rejected:,} rejected rows"
    [visitor] = cells.find(tag="tr", **{"data-column": "visitor_id"})
    assert "fk-optimizely-visitor" in visitor["text"] and "required" in visitor["text"] and "PII" not in visitor["text"]
    assert "varchar" in visitor["text"] and f"{visitors:,}" in visitor["text"]
    [country] = cells.find(tag="tr", **{"data-column": "country"})
    assert "PII" in country["text"] and f"{nulls / rows:.1%}" in country["text"]
    [decided] = cells.find(tag="tr", **{"data-column": "decided_at"})
    assert first.isoformat() in decided["text"] and last.isoformat() in decided["text"]
    [key] = cells.find(tag="tr", **{"data-column": "uuid"})
    assert "key" in key["text"]


def test_rows_are_filtered_sorted_and_paged_as_the_same_query_in_sql(project):
    where = "country = 'DE' and variation_id like '93%'"
    page = client(project).get(f"/tables/{DECISIONS}", params={"where": where, "sort": "uuid", "desc": "1",
                                                                "page": "2", "size": "25"})

    assert page.status_code == 200
    expected = [u for (u,) in query(project, f'select uuid from domain."{DECISIONS}" where {where} '
                                             "order by uuid desc limit 25 offset 25")]
    [(matching,)] = query(project, f'select count(*) from domain."{DECISIONS}" where {where}')
    table = page.text.split('id="row-table"')[1].split("</table>")[0]
    names = [name.strip() for name in re.findall(r"<th><a [^>]*>([^<▲▼]+)", table)]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    assert [row[names.index("uuid")] for row in rows if row] == expected and len(expected) == 25
    assert f"{matching:,} matching row(s), sorted by uuid descending; page 2 of {-(-matching // 25)}" in page.text
    assert 'rel="prev"' in page.text and "desc=1" in page.text


def test_a_filter_that_is_not_one_condition_or_reads_a_file_is_refused_and_the_table_stays(project):
    app = client(project)
    [(before,)] = query(project, f'select count(*) from domain."{DECISIONS}"')
    for where, message in (("1=1); drop table domain.\"Optimizely:Decisions\"; select (1", "--where"),
                           ("uuid in (select * from read_csv('/etc/passwd'))", "--where"),
                           ("no_such_column = 1", "--where")):
        page = app.get(f"/tables/{DECISIONS}", params={"where": where})
        assert page.status_code == 200 and message in Cells(page.text).find(tag="p", **{"class": "problem"})[0]["text"]
        assert "root:" not in page.text
    assert app.get(f"/tables/{DECISIONS}", params={"sort": "no_such_column"}).text.count("sort: no column") == 1
    assert app.get(f"/tables/{DECISIONS}", params={"page": "x"}).status_code == 400
    assert app.get(f"/tables/{DECISIONS}", params={"size": "1000000"}).status_code == 400
    assert query(project, f'select count(*) from domain."{DECISIONS}"') == [(before,)]


# -- feed review ---------------------------------------------------------------------------------------------------

def test_feed_review_ranks_the_working_trees_changes_against_a_base_ref_as_feeds_diff_does(project):
    app = client(project)
    page = app.get("/review")
    diff = json.loads(run_cli(project, "feeds", "diff", "main", "--format", "json").stdout)

    assert page.status_code == 200
    cells = Cells(page.text)
    assert f"Verdict: {diff['verdict']}" in cells.find(tag="p", id="verdict")[0]["text"]
    shown = [(li["data-severity"], li["text"].strip().split(" ", 2 if li["data-severity"] == "needs attention"
                                                             else 1)[-1].strip())
             for li in cells.find(tag="li", **{"class": "change"})]
    assert sorted(shown) == sorted((c["severity"], c["message"]) for c in diff["changes"])
    assert ("needs attention", "column `country` becomes PII (semantic tag country)") in shown
    assert app.get("/review", params={"base": "HEAD"}).status_code == 200
    assert app.get("/review", params={"base": "--output=/tmp/x"}).status_code == 400
    missing = app.get("/review", params={"base": "nope"})
    assert missing.status_code == 409 and "no git ref 'nope'" in Cells(missing.text).find(tag="p")[0]["text"]


# -- experiments ---------------------------------------------------------------------------------------------------

ENTRY_CELLS = {"units": "units", "total": "total", "lift": "lift", "p_value": "p_value", "q_value": "q_value",
               "always_valid_p": "always_valid_p"}


def shown_values(html: str) -> dict:
    """(segment value, metric, variation) -> {field: the JSON value its cell carries}."""
    found = {}
    for part in re.split(r'<section class="results-part"', html)[1:]:
        segment = re.match(r'(?: data-segment-value="([^"]*)")?', part).group(1)
        for metric, row in re.findall(r'<tr class="[^"]*" data-metric="([^"]+)">(.*?)</tr>', part, re.S):
            cells = {field: attrs for field, attrs in re.findall(r'<td data-field="([^"]+)"([^>]*)>', row)}
            values = {field: dict(re.findall(r'data-([a-z_]+)="([^"]*)"', attrs)) for field, attrs in cells.items()}
            variation = json.loads(values["variation"]["value"]) if values["variation"]["value"].startswith('"') \
                else values["variation"]["value"]
            found[(segment, metric, variation)] = values
    return found


def expected_rows(results: dict) -> dict:
    parts = results["segments"] if "segments" in results else [{"value": None, "metrics": results["metrics"]}]
    return {("" if "segments" in results and part["value"] is None else part["value"] if "segments" in results
             else None, metric["metric"], entry["variation"]): entry
            for part in parts for metric in part["metrics"] for entry in metric["variations"]}


@pytest.mark.parametrize("path, args", [("/experiments/checkout", ["checkout"]),
                                        ("/experiments/checkout?segment=country", ["checkout", "--segment", "country"]),
                                        ("/experiments/checkout_cuped", ["checkout_cuped"])])
def test_the_experiment_page_shows_the_same_numbers_as_courier_results_json(project, path, args):
    app = client(project)
    page = app.get(path)
    results = cli_json(project, "results", *args)

    assert page.status_code == 200
    shown, expected = shown_values(page.text), expected_rows(results)
    assert set(shown) == set(expected)
    for key, entry in expected.items():
        cells = shown[key]
        value = entry.get("adjusted_mean", entry["mean"])
        assert json.loads(cells["adjusted_mean" if "adjusted_mean" in entry else "mean"]["value"]) == value
        if "adjusted_mean" in entry:
            assert json.loads(cells["mean"]["value"]) == entry["mean"]  # the unadjusted one beside it
        for field in ("units", "total"):
            assert json.loads(cells[field]["value"]) == entry[field], (key, field)
        if entry["baseline"] or entry["p_value"] is None:
            assert "value" not in cells["lift"] and "value" not in cells["p_value"]
            continue
        for field in ("lift", "p_value", "q_value", "always_valid_p", "chance_to_beat_baseline", "expected_loss"):
            assert json.loads(cells[field]["value"]) == entry[field], (key, field)
        assert json.loads(cells["interval"]["low"]) == entry["lift_low"]
        assert json.loads(cells["interval"]["high"]) == entry["lift_high"]
        assert json.loads(cells["always_valid"]["low"]) == entry["always_valid_low"]
        assert json.loads(cells["always_valid"]["high"]) == entry["always_valid_high"]
    srm = Cells(page.text).find(tag="span", **{"data-field": "sample_ratio_p"})[0]
    assert float(srm["data-value"]) == results["sample_ratio"]["p_value"]
    exposures = results["multiple_exposures"]
    assert f"Multiple exposures: {exposures['visitors']:,} of {exposures['of_visitors']:,} visitors" in page.text
    assert f"on each of {len(results['daily'])} enrollment day(s)" in page.text or "Daily sample ratio: MISMATCH" in page.text
    if path == "/experiments/checkout":  # the guardrail's reading, apart, as `courier results` prints it
        from optimizely_courier.experiments.render import guardrail_rows

        (revenue,) = [metric for metric in results["metrics"] if metric["metric"] == "revenue"]
        table = page.text[page.text.index('<table class="grid guardrails">'):]
        assert all(f"<td>{cell}</td>" in table for row in guardrail_rows(revenue) for cell in row if cell)
    download = app.get(path.replace("?", "/results.json?") if "?" in path else path + "/results.json")
    assert download.status_code == 200 and json.loads(download.text) == results
    assert download.text == run_cli(project, "results", *args, "--json").stdout  # byte for byte


def test_the_experiment_page_says_why_a_comparison_is_undefined_and_marks_approximate_p_values(project):
    page = client(project).get("/experiments/checkout")
    results = cli_json(project, "results", "checkout")

    approximate = [(m["metric"], e["variation"]) for m in results["metrics"] for e in m["variations"]
                   if not e["baseline"] and e["p_value"] is not None and not e["normal_approximation"]["enough_units"]]
    shown = shown_values(page.text)
    for metric, variation in approximate:
        assert re.search(r">[0-9.e-]+\*</td>", page.text) and shown[(None, metric, variation)]["p_value"]
        assert f"* {metric}: approximate" in page.text
    assert approximate  # the generated experiment's metrics are skewed at 1,500 units an arm


def test_csv_download_has_a_row_per_metric_and_variation_with_the_exact_values(project):
    download = client(project).get("/experiments/checkout/results.csv", params={"segment": "country"})
    results = cli_json(project, "results", "checkout", "--segment", "country")

    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(download.text)))
    entries = [(part["value"], metric["metric"], entry) for part in results["segments"] for metric in part["metrics"]
               for entry in metric["variations"]]
    assert len(rows) == len(entries)
    for row, (value, metric, entry) in zip(rows, entries):
        assert (row["segment_value"], row["metric"], row["variation"]) == (value or "", metric, entry["variation"])
        assert float(row["mean"] or "nan") == entry["mean"] or entry["mean"] is None
        assert row["normal_approximation.enough_units"] in ("", str(entry.get("normal_approximation", {})
                                                                     .get("enough_units")))
    assert 'attachment; filename="checkout-country-results.csv"' == download.headers["content-disposition"]


def test_charts_draw_each_metrics_lift_by_enrollment_day_and_units_per_variation_per_day(project):
    page = client(project).get("/experiments/checkout")
    results = cli_json(project, "results", "checkout")

    cells = Cells(page.text)
    figures = [f for f in cells.find(tag="figure") if f.get("data-metric")]
    assert [f["data-metric"] for f in figures] == [m["metric"] for m in results["metrics"]]
    charts = page.text.split('class="chart lift-chart"')[1:]
    assert len(charts) == len(results["metrics"])
    for chart in charts:
        chart = chart.split("</svg>")[0]
        assert chart.count('class="look"') == 5  # a point per enrollment day
        assert 'class="interval"' in chart and chart.count('class="always-valid"') == 2
    units = page.text.split('class="chart units-chart"')[1].split("</svg>")[0]
    bars = re.findall(r"<title>(\d{4}-\d\d-\d\d): (\d+) ([\d,]+) units</title>", units)
    assert len(bars) == 2 * 5
    for variation, count in results["sample_ratio"]["units"].items():
        assert sum(int(n.replace(",", "")) for _, v, n in bars if v == variation) == count


def test_fields_the_results_gain_later_are_shown_without_a_change_to_the_page(project, monkeypatch):
    """New fields (say a posterior median, a metric's owner, a weekly health) appear: in their own
    columns, beside the metric, in a section of their own, and in the CSV."""
    from optimizely_courier.ui import results as page_results

    real = page_results.experiment_results

    def with_new_fields(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the real results, plus fields
        found = real(*args, **kwargs)
        for metric in found["metrics"]:
            metric["owner"] = "growth" if metric["metric"] == "revenue" else "checkout"
            for entry in metric["variations"]:
                entry["posterior_median"] = 0.5 if entry["baseline"] else 0.9123
        found["weekly"] = [{"week": "2026-W48", "sample_ratio_p": 0.42}]
        return found

    monkeypatch.setattr(page_results, "experiment_results", with_new_fields)
    app = client(project)
    page = app.get("/experiments/checkout")
    csv_text = app.get("/experiments/checkout/results.csv").text

    assert "<th>posterior_median</th>" in page.text and page.text.count('data-field="posterior_median"') == 8
    assert ">0.9123</td>" in page.text and 'data-field="owner">owner: growth' in page.text
    assert 'id="more"' in page.text and "sample_ratio_p" in page.text and "2026-W48" in page.text
    assert "posterior_median" in csv_text.splitlines()[0] and "metric.owner" in csv_text.splitlines()[0]


def test_experiments_are_listed_with_whether_their_results_are_built(project):
    page = client(project).get("/experiments")

    assert page.status_code == 200
    cells = Cells(page.text)
    assert [a["text"] for a in cells.find(tag="a") if a.get("href", "").startswith("/experiments/")] == [
        "checkout", "checkout_cuped"]
    assert page.text.count("<td>built</td>") == 2
    assert client(project).get("/experiments/checkout", params={"segment": "plan"}).status_code == 400


# -- rules: secrets, token, hosts, the extra ----------------------------------------------------------------------

def test_no_page_or_download_shows_a_secret_even_when_a_recorded_error_holds_one(copy, monkeypatch):
    from optimizely_courier.runs.history import CourierRun, save

    secret = "https://hooks.example.com/services/T0KEN-VALUE-42"
    monkeypatch.setenv("HOOK_URL", secret)
    sources = copy / "sources.yml"
    sources.write_text(sources.read_text().replace("    load_operations:", "    notify: [{webhook: \"${HOOK_URL}\"}]\n"
                                                                           "    load_operations:", 1))
    save(copy / "warehouse.duckdb", CourierRun(run_id="leaky", courier="optimizely", dates="2026-11-30",
                                              status="failed", error=f"POST {secret} failed"))
    app = client(copy)
    pages = [app.get(path) for path in ("/", "/couriers/optimizely", "/experiments/checkout",
                                        "/experiments/checkout/results.json", "/review")]
    assert all(page.status_code == 200 for page in pages)
    assert not any(secret in page.text or "T0KEN-VALUE-42" in page.text for page in pages)
    assert "POST *** failed" in pages[0].text and "POST *** failed" in pages[1].text


def test_with_a_token_every_request_needs_it_as_a_cookie_a_header_or_once_in_the_query(project):
    token = "correct-horse-battery"
    app = client(project, token=token)

    assert app.get("/").status_code == 401 and app.get("/", params={"token": "wrong"}).status_code == 401
    assert app.get("/", headers={"authorization": f"Bearer {token}"}).status_code == 200
    entered = app.get("/experiments", params={"token": token, "segment": "x"}, follow_redirects=False)
    assert entered.status_code == 303 and entered.headers["location"] == "/experiments?segment=x"
    assert "HttpOnly" in entered.headers["set-cookie"] and "SameSite=strict" in entered.headers["set-cookie"]
    page = app.get("/")  # the cookie the redirect set
    assert page.status_code == 200 and token not in page.text
    assert app.get("/static/style.css", cookies={}).status_code == 200


def test_a_loopback_server_answers_only_to_loopback_host_names_and_sends_a_strict_content_policy(project):
    app = client(project, allowed_hosts={"127.0.0.1", "localhost"})

    assert app.get("/", headers={"host": "rebound.example.com"}).status_code == 400
    page = app.get("/", headers={"host": "localhost:8765"})
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert not re.search(r"""(src|href)=["']https?://""", page.text)  # every asset from this server


def test_courier_ui_refuses_a_non_loopback_host_without_a_token_and_names_the_extra_when_missing(project):
    refused = run_cli(project, "ui", "--host", "0.0.0.0")
    assert refused.exit_code == 2 and "--host 0.0.0.0 listens beyond this machine: give --token T" in refused.output

    code = ("import sys; sys.modules['starlette'] = None\n"
            "from optimizely_courier.cli.main import main; main(['-C', sys.argv[1], 'ui'])")
    missing = subprocess.run([sys.executable, "-c", code, str(project)], capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("Error: courier ui needs the `ui` extra (starlette is not installed): "
                                     "pip install 'optimizely-courier[ui]'")


# -- the warehouse being written -----------------------------------------------------------------------------------

def test_pages_show_a_run_in_progress_instead_of_an_error_and_the_run_then_finishes(copy):
    add_day(copy, dt.date(2026, 11, 30))
    run = courier(copy, "run", "optimizely", "--date", "2026-11-30", fault="between-jobs:STOP")
    try:
        assert wait_stopped(run), "the run did not stop at its fault point"
        app = client(copy)
        overview, table, experiment = app.get("/"), app.get(f"/tables/{DECISIONS}"), app.get("/experiments/checkout")
        download = app.get("/experiments/checkout/results.json")
        courier_page = app.get("/couriers/optimizely")
    finally:
        run.send_signal(signal.SIGCONT)
    code, output = finish(run)

    assert code == 0, output
    for page in (overview, table, experiment, courier_page):
        assert page.status_code == 200 and 'data-refresh="5"' in page.text
        assert "run in progress" in page.text and "Loading data" in page.text
    assert "a courier run is in progress: run " in table.text and "a courier run is in progress" in experiment.text
    assert download.status_code == 503 and download.headers["retry-after"] == "5"
    assert "landed and built data as the last run saw them" in overview.text  # the kept view, not an error
    after = client(copy).get(f"/tables/{DECISIONS}")
    [(rows,)] = query(copy, f'select count(*) from domain."{DECISIONS}"')
    assert after.status_code == 200 and "data-refresh" not in after.text
    assert Cells(after.text).find(tag="span", id="row-count")[0]["text"] == f"{rows:,} rows"


def test_pages_say_who_holds_the_warehouse_while_a_process_outside_the_courier_has_it(copy, hold_warehouse):
    holder = hold_warehouse(copy / "warehouse.duckdb")
    app = client(copy)
    table, overview = app.get(f"/tables/{DECISIONS}"), app.get("/")
    holder.release()

    assert table.status_code == 200 and f"the warehouse is busy: PID {holder.pid} (" in table.text
    assert overview.status_code == 200 and f"warehouse busy: PID {holder.pid} (" in overview.text


def test_no_connection_is_held_between_requests(copy):
    app = client(copy)
    assert app.get(f"/tables/{DECISIONS}").status_code == 200 and app.get("/experiments/checkout").status_code == 200

    code = "import sys, duckdb; duckdb.connect(sys.argv[1]).execute('create table held_not (x int)')"
    writer = subprocess.run([sys.executable, "-c", code, str(copy / "warehouse.duckdb")], capture_output=True,
                            text=True)
    assert writer.returncode == 0, writer.stderr


READ_LOOP_LIMIT = 3000  # requests per reader thread, at most
READ_PATHS = ("/", f"/tables/{DECISIONS}", "/experiments/checkout", "/couriers/optimizely")


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_a_courier_run_and_a_dbt_build_succeed_while_pages_are_read_in_a_loop(copy):
    import httpx

    from tests.ui_browser import serving

    add_day(copy, dt.date(2026, 11, 30))
    statuses: list[int] = []
    running_seen: list[bool] = []
    done = threading.Event()

    def read(base: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for index in range(READ_LOOP_LIMIT):
                if done.is_set():
                    return
                page = http.get(READ_PATHS[index % len(READ_PATHS)])
                statuses.append(page.status_code)
                running_seen.append("run in progress" in page.text)

    with serving(create_app(copy)) as base:
        readers = [threading.Thread(target=read, args=(base,)) for _ in range(2)]
        for reader in readers:
            reader.start()
        while len(statuses) < 8:  # the loop is under way before the writers start
            time.sleep(0.05)
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(copy), "run", "optimizely",
                              "--date", "2026-11-30", "--lock-timeout", "120"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        build = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--select", "tag:checkout",
                                "--project-dir", str(copy), "--profiles-dir", str(copy)], capture_output=True,
                               text=True)
        took = time.monotonic() - started
        done.set()
        for reader in readers:
            reader.join(timeout=120)

    assert run.returncode == 0, run.stdout + run.stderr
    assert build.returncode == 0, build.stdout[-3000:]
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert len(statuses) > 20, (len(statuses), took)
    assert any(running_seen)  # some pages were read while the run wrote: they showed it
    assert "2026-11-30" in [day for (day,) in query(copy, 'select distinct cast(_file_date as varchar) from '
                                                          'raw_optimizely.decisions')]
