"""An experiment's page: `courier results` (the same JSON `courier results --json` prints, from the same
function) as table rows, its CSV and JSON downloads, and the series of its charts.

Each table cell carries the exact JSON value it shows (`data-value`), so what the page shows can be checked
against `courier results --json`. Fields the page does not know (added to the results later) are shown all
the same: a variation's as extra columns, a metric's beside its name, the experiment's in a section of
their own, and all of them in the CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from optimizely_courier.config.sources import Project
from optimizely_courier.experiments.definition import load_experiments
from optimizely_courier.experiments.render import (
    GUARDRAIL_HEADERS,
    GUARDRAILS_TITLE,
    daily_line,
    guardrail_rows,
    interval,
    metric_notes,
    multiple_exposures_line,
    number,
    percent,
)
from optimizely_courier.experiments.results import experiment_results, find_experiment
from optimizely_courier.experiments.stats import SRM_ALPHA
from optimizely_courier.text import to_json
from optimizely_courier.ui import charts
from optimizely_courier.ui.access import reading

APPROXIMATE = "*"  # as the text table marks a p whose normal approximation needs more units
# What the table lays out itself; anything else in the results is shown generically.
ENTRY_FIELDS = {"variation", "units", "total", "mean", "adjusted_mean", "nonfinite_rows", "baseline", "lift",
                "lift_low", "lift_high", "p_value", "q_value", "significant", "normal_approximation",
                "always_valid_p", "always_valid_low", "always_valid_high", "looks", "reason",
                "chance_to_beat_baseline", "expected_loss", "guardrail", "bayesian_reason"}
METRIC_FIELDS = {"metric", "kind", "variations", "mixing_sd", "cuped", "better", "cap", "guardrail"}
RESULT_FIELDS = {"experiment", "experiment_id", "baseline", "window_hours", "cuped_days", "sample_ratio",
                 "metrics", "segment", "segments", "prior", "multiple_exposures", "daily"}


def experiments_list(project: Project) -> list[dict[str, Any]]:
    """Every experiment definition, and whether its results model is built (when the warehouse can be read)."""
    from optimizely_courier.errors import CourierError
    from optimizely_courier.experiments.observed import SCHEMA

    experiments = load_experiments(project.root)
    built: set[str] | None = None
    try:
        with reading(project) as db:
            built = {row[0] for row in db.execute("select table_name from information_schema.tables where "
                                                  "table_schema = ?", [SCHEMA]).fetchall()}
    except CourierError:
        pass  # shown as "unknown": the list itself needs no warehouse
    return [{"id": e.id, "experiment_id": e.experiment_id, "path": e.path, "baseline": e.baseline,
             "window_hours": e.window.total_seconds() / 3600, "cuped": e.cuped is not None,
             "segments": list(e.segments), "metrics": [m.name for m in e.metrics],
             "built": None if built is None else f"exp_{e.id}__results" in built} for e in experiments]


def experiment_view(project: Project, name: str, segment: str | None) -> dict[str, Any]:
    """The results (exactly `courier results --json`'s), the table rows, the notes and the charts.

    Raises:
        Unavailable: a run or another process writes the warehouse.
        CourierError: no such experiment or segment, or no results built yet.
    """
    from optimizely_courier.experiments.looks import looks
    from optimizely_courier.experiments.plot import cumulative_lifts

    experiment = find_experiment(project.root, name)
    with reading(project):  # the results and the looks open the file themselves, read-only
        results = experiment_results(project.root, project.warehouse, name, segment)
        lifts = cumulative_lifts(experiment, project.warehouse, results["baseline"])
        history = looks(project.warehouse, experiment)
    return _view(experiment, results, lifts, history)


def results_of(project: Project, name: str, segment: str | None) -> dict:
    """`courier results --json`'s document, read as the pages read (for the downloads)."""
    with reading(project):
        return experiment_results(project.root, project.warehouse, name, segment)


def _view(experiment, results: dict, lifts: dict, history: dict) -> dict:  # noqa: ANN001 - an Experiment
    adjusted = bool(results["cuped_days"])
    parts = ([{"value": None, "metrics": results["metrics"]}] if "segments" not in results else results["segments"])
    extra = _extra_fields(parts)
    first = experiment.metrics[0].name
    units = {variation: _daily(days) for (_, metric, variation), days in sorted(history.items()) if metric == first}
    return {"results": results, "json": to_json(results), "adjusted": adjusted, "extra_fields": extra,
            "headers": headers(adjusted, extra), "segments": list(experiment.segments),
            "parts": [{"value": part["value"], "rows": rows(part["metrics"], adjusted, extra),
                       "notes": [note for metric in part["metrics"] for note in metric_notes(metric)],
                       "guardrails": [row for metric in part["metrics"] if metric["guardrail"]
                                      for row in guardrail_rows(metric)]} for part in parts],
            "health": [{"text": daily_line(results["daily"]),
                        "alarm": any(day["sample_ratio_p"] < SRM_ALPHA for day in results["daily"])},
                       {"text": multiple_exposures_line(results["multiple_exposures"]),
                        "alarm": results["multiple_exposures"]["warning"]}],
            "guardrail_headers": GUARDRAIL_HEADERS, "guardrails_title": GUARDRAILS_TITLE,
            "more": {key: value for key, value in results.items() if key not in RESULT_FIELDS},
            "lift_charts": [{"metric": metric, "svg": charts.lift_chart(metric, series, results["baseline"],
                                                                        f"lift-{index}")}
                            for index, (metric, series) in enumerate(lifts.items())],
            "units_chart": charts.units_chart(units, results["baseline"])}


def _daily(days: list) -> list[tuple[Any, int]]:
    """Units enrolled each day, from the cumulative looks."""
    found, before = [], 0
    for day, sums in days:
        found.append((day, sums.units - before))
        before = sums.units
    return found


def _extra_fields(parts: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for part in parts:
        for metric in part["metrics"]:
            for entry in metric["variations"]:
                seen.update(dict.fromkeys(key for key in entry if key not in ENTRY_FIELDS))
    return list(seen)


def headers(adjusted: bool, extra: list[str]) -> list[str]:
    return ["metric", "variation", "units", "total", "value", *(["unadjusted"] if adjusted else []), "lift",
            "95% interval", "p", "q", "always-valid interval", "always-valid p", "chance to beat", "expected loss", "",
            *extra]


def rows(metrics: list[dict], adjusted: bool, extra: list[str]) -> list[dict]:
    """The table's rows: per metric and variation, cells of {field, text, values (JSON values shown)}."""
    found = []
    for metric in metrics:
        details = {key: value for key, value in metric.items() if key not in METRIC_FIELDS}
        for index, entry in enumerate(metric["variations"]):
            found.append({"metric": metric["metric"], "first": index == 0, "span": len(metric["variations"]),
                          "kind": metric["kind"], "details": details if index == 0 else {},
                          "cuped": metric.get("cuped") if index == 0 else None, "baseline": entry["baseline"],
                          "significant": bool(entry.get("significant")),
                          "cells": _cells(entry, adjusted) + [_cell(key, generic(entry.get(key)),
                                                                     value=_json(entry.get(key))) for key in extra]})
    return found


def _cell(field: str, text: str, **values: Any) -> dict:  # noqa: ANN401
    return {"field": field, "text": text, "values": {k: _json(v) if not isinstance(v, str) else v
                                                     for k, v in values.items() if v is not None}}


def _json(value: Any) -> str:  # noqa: ANN401
    """A value as `courier results --json` writes it (a non-finite number is null)."""
    return json.dumps(value if not isinstance(value, float) or math.isfinite(value) else None, default=str)


def _cells(entry: dict, adjusted: bool) -> list[dict]:
    value = entry.get("adjusted_mean", entry["mean"])
    cells = [_cell("variation", entry["variation"], value=entry["variation"]),
             _cell("units", f"{entry['units']:,}", value=entry["units"]),
             _cell("total", number(entry["total"], ",.0f"), value=entry["total"]),
             _cell("adjusted_mean" if "adjusted_mean" in entry else "mean", number(value), value=value)]
    if adjusted:
        cells.append(_cell("mean", number(entry["mean"]), value=entry["mean"]))
    blank = [_cell(field, "") for field in ("interval", "p_value", "q_value", "always_valid", "always_valid_p",
                                            "chance_to_beat_baseline", "expected_loss")]
    if entry["baseline"]:
        return cells + [_cell("lift", "baseline")] + blank + [_cell("verdict", "")]
    if entry["p_value"] is None:
        return cells + [_cell("lift", "n/a")] + blank + [_cell("verdict", entry.get("reason", ""))]
    approximate = "" if entry["normal_approximation"]["enough_units"] else APPROXIMATE
    q = entry.get("q_value")
    chance, loss = entry.get("chance_to_beat_baseline"), entry.get("expected_loss")
    return cells + [
        _cell("lift", percent(entry["lift"]), value=entry["lift"]),
        _cell("interval", interval(entry, "lift"), low=entry.get("lift_low"), high=entry.get("lift_high")),
        _cell("p_value", f"{entry['p_value']:.3g}{approximate}", value=entry["p_value"]),
        _cell("q_value", "n/a" if q is None else f"{q:.3g}", value=q),
        _cell("always_valid", interval(entry, "always_valid"), low=entry.get("always_valid_low"),
              high=entry.get("always_valid_high")),
        _cell("always_valid_p", "n/a" if entry["always_valid_p"] is None else f"{entry['always_valid_p']:.3g}",
              value=entry["always_valid_p"]),
        _cell("chance_to_beat_baseline", "n/a" if chance is None else f"{chance:.1%}{approximate}", value=chance),
        _cell("expected_loss", "n/a" if loss is None else f"{loss:.2%}", value=loss),
        _cell("verdict", "significant" if entry.get("significant") else "")]


def generic(value: Any) -> str:  # noqa: ANN401
    """Any JSON value as a cell's text (for fields the page has no layout of its own for)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, ".4g")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {generic(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(generic(item) for item in value)
    return str(value)


def results_csv(results: dict) -> str:
    """The table as CSV: a row per segment value, metric and variation, every field of the results (nested
    ones as `parent.child`), exact values."""
    records = []
    segmented = "segments" in results
    parts = results["segments"] if segmented else [{"value": None, "metrics": results["metrics"]}]
    for part in parts:
        for metric in part["metrics"]:
            head = {**({"segment_value": part["value"]} if segmented else {}),
                    "metric": metric["metric"], "kind": metric["kind"]}
            head.update(_flat({key: value for key, value in metric.items() if key not in ("metric", "kind",
                                                                                            "variations")}, "metric."))
            records += [{**head, **_flat(entry)} for entry in metric["variations"]]
    fields = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def _flat(data: dict, prefix: str = "") -> dict:
    found = {}
    for key, value in data.items():
        if isinstance(value, dict):
            found.update(_flat(value, f"{prefix}{key}."))
        else:
            found[prefix + key] = json.dumps(value) if isinstance(value, list) else value
    return found
