"""`courier results` as text: the results page's table, then notes on what a number cannot claim."""

from __future__ import annotations

APPROXIMATE = "*"  # marks a p-value whose normal approximation needs more units than the arms have


def render(results: dict) -> str:
    """The results as a table, like the results page (with a segment: a table per value)."""
    srm = results["sample_ratio"]
    units = " / ".join(f"{count:,}" for count in srm["units"].values())
    verdict = "MISMATCH: check the assignment before reading results" if srm["mismatch"] else "as planned"
    cuped = (f", CUPED on the {results['cuped_days']:g} days before each decision (value, lift, interval and p "
             "adjusted)" if results["cuped_days"] else "")
    header = (f"Experiment {results['experiment']} ({results['experiment_id']}), baseline {results['baseline']}, "
              f"attribution window {results['window_hours']:g} h{cuped}\n"
              f"Sample ratio: {units} units, p = {srm['p_value']:.3g} ({verdict})")
    adjusted = bool(results["cuped_days"])
    if "segments" not in results:
        return header + "\n\n" + _table(results["metrics"], adjusted)
    nothing = f"no units of the baseline ({results['baseline']}) with this value: nothing to compare"
    parts = [f"{results['segment']} = {part['value'] if part['value'] is not None else '(none)'}\n\n"
             + (_table(part["metrics"], adjusted) if part["metrics"] else nothing) for part in results["segments"]]
    return "\n\n".join([header + f"\nq-values across every {results['segment']}", *parts])


def _table(metrics: list[dict], adjusted: bool) -> str:
    from rich import box
    from rich.table import Table

    from optimizely_courier.text import as_text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    headers = ["metric", "variation", "units", "total", "value", *(["unadjusted"] if adjusted else []), "lift",
               "95% interval", "p", "q", "always-valid interval", "always-valid p", ""]
    for header in headers:
        table.add_column(header, justify="left" if header in ("metric", "variation", "") else "right")
    for metric in metrics:
        for index, entry in enumerate(metric["variations"]):
            table.add_row(metric["metric"] if index == 0 else "", *_row(entry, adjusted))
    notes = [note for metric in metrics for note in _notes(metric)]
    return as_text(table) + "".join(f"\n{note}" for note in notes)


def _row(entry: dict, adjusted: bool) -> list[str]:
    value = _number(entry.get("adjusted_mean", entry["mean"]))
    row = [entry["variation"], f"{entry['units']:,}", _number(entry["total"], ",.0f"), value]
    row += [_number(entry["mean"])] if adjusted else []
    if entry["baseline"]:
        return row + ["baseline", "", "", "", "", "", ""]
    if entry["p_value"] is None:
        return row + ["n/a", "", "", "", "", "", entry.get("reason", "")]
    approximate = "" if entry["normal_approximation"]["enough_units"] else APPROXIMATE
    q = entry.get("q_value")
    return row + [_percent(entry["lift"]), _interval(entry, "lift"), f"{entry['p_value']:.3g}{approximate}",
                  "n/a" if q is None else f"{q:.3g}", _interval(entry, "always_valid"),
                  "n/a" if entry["always_valid_p"] is None else f"{entry['always_valid_p']:.3g}",
                  "significant" if entry.get("significant") else ""]


def _notes(metric: dict) -> list[str]:
    """What the table of a metric cannot show in a cell: approximate p-values, values left out."""
    notes = []
    approximate = [e for e in metric["variations"] if not e["baseline"] and e["p_value"] is not None
                   and not e["normal_approximation"]["enough_units"]]
    needed = [e["normal_approximation"]["units_needed"] for e in approximate]
    if approximate and None in needed:
        notes.append(f"{APPROXIMATE} {metric['metric']}: approximate; too few units to tell how skewed it is")
    elif approximate:
        notes.append(f"{APPROXIMATE} {metric['metric']}: approximate; a metric this skewed needs about "
                     f"{max(needed):,} units per variation for the normal approximation (355 x skewness squared, "
                     "Kohavi et al. 2014)")
    left_out = sum(e["nonfinite_rows"] or 0 for e in metric["variations"])
    if left_out:
        notes.append(f"{metric['metric']}: {left_out:,} row(s) with a NaN or infinite value left out")
    return notes


def _number(value: float | None, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _interval(entry: dict, name: str) -> str:
    low, high = entry.get(name + "_low"), entry.get(name + "_high")
    if entry["lift"] is None or low is None or high is None:
        return "n/a"
    return f"[{low:+.1%}, {high:+.1%}]"
