"""`courier results` as text: the experiment's health (sample ratio overall and per day, multiple
exposures), the results page's table, notes on what a number cannot claim, then the guardrails."""

from __future__ import annotations

from optimizely_courier.experiments.observed import MULTIPLE_EXPOSURES_WARNING
from optimizely_courier.experiments.stats import SRM_ALPHA

APPROXIMATE = "*"  # marks a p-value whose normal approximation needs more units than the arms have


def render(results: dict) -> str:
    """The results as a table, like the results page (with a segment: a table per value)."""
    srm = results["sample_ratio"]
    units = " / ".join(f"{count:,}" for count in srm["units"].values())
    verdict = "MISMATCH: check the assignment before reading results" if srm["mismatch"] else "as planned"
    cuped = (f", CUPED on the {results['cuped_days']:g} days before each decision (value, lift, interval and p "
             "adjusted)" if results["cuped_days"] else "")
    header = "\n".join([
        f"Experiment {results['experiment']} ({results['experiment_id']}), baseline {results['baseline']}, "
        f"attribution window {results['window_hours']:g} h{cuped}",
        f"Sample ratio: {units} units, p = {srm['p_value']:.3g} ({verdict})",
        daily_line(results["daily"]), multiple_exposures_line(results["multiple_exposures"]),
        *([f"Bayesian prior on the relative lift: normal, mean {results['prior']['mean']:+.1%}, "
           f"sd {results['prior']['sd']:.1%}"] if results["prior"] != "flat" else [])])
    adjusted = bool(results["cuped_days"])
    if "segments" not in results:
        return header + "\n\n" + _table(results["metrics"], adjusted)
    nothing = f"no units of the baseline ({results['baseline']}) with this value: nothing to compare"
    parts = [f"{results['segment']} = {part['value'] if part['value'] is not None else '(none)'}\n\n"
             + (_table(part["metrics"], adjusted) if part["metrics"] else nothing) for part in results["segments"]]
    return "\n\n".join([header + f"\nq-values across every {results['segment']}", *parts])


def daily_line(days: list[dict]) -> str:
    """The per-day sample ratio tests, in a line: the days whose own ratio is off."""
    off = [day for day in days if day["sample_ratio_p"] < SRM_ALPHA]
    if not off:
        return f"Daily sample ratio: as planned on each of {len(days)} enrollment day(s)"
    listed = ", ".join(f"{day['day']} (p = {day['sample_ratio_p']:.3g})" for day in off[:5]) + (
        ", ..." if len(off) > 5 else "")
    return f"Daily sample ratio: MISMATCH on {len(off)} of {len(days)} day(s): {listed}"


def multiple_exposures_line(found: dict) -> str:
    handled = "left out" if found["handling"] == "exclude" else "counted in the variation of their first decision"
    line = (f"Multiple exposures: {found['visitors']:,} of {found['of_visitors']:,} visitors ({found['share']:.1%}) "
            f"decided into more than one variation, {handled}")
    if found["warning"]:
        line += (f"\nWARNING: more than {MULTIPLE_EXPOSURES_WARNING:.0%} of the visitors were decided into more "
                 "than one variation: check the assignment (a changed split, reset cookies) before reading results")
    return line


def _table(metrics: list[dict], adjusted: bool) -> str:
    from rich import box
    from rich.table import Table

    from optimizely_courier.text import as_text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    headers = ["metric", "variation", "units", "total", "value", *(["unadjusted"] if adjusted else []), "lift",
               "95% interval", "p", "q", "always-valid interval", "always-valid p", "chance to beat",
               "expected loss", ""]
    for header in headers:
        table.add_column(header, justify="left" if header in ("metric", "variation", "") else "right")
    for metric in metrics:
        for index, entry in enumerate(metric["variations"]):
            table.add_row(metric["metric"] if index == 0 else "", *_row(entry, adjusted))
    notes = [note for metric in metrics for note in metric_notes(metric)]
    guarded = [metric for metric in metrics if metric["guardrail"]]
    return (as_text(table) + "".join(f"\n{note}" for note in notes)
            + (f"\n\n{_guardrails(guarded)}" if guarded else ""))


GUARDRAIL_HEADERS = ("guardrail", "variation", "better", "harm", "90% interval", "max harm", "p (harm > max)",
                     "verdict")
GUARDRAILS_TITLE = ("Guardrails: is a variation worse than the baseline by more than the harm its metric tolerates? "
                    "(one-sided z-tests at 5%; harm is the relative lift against the better direction)")


def guardrail_rows(metric: dict) -> list[list[str]]:
    """A guardrail metric's rows (GUARDRAIL_HEADERS): how much worse each variation is, against the harm
    its metric tolerates."""
    rows = []
    tolerated = f"{metric['guardrail']['max_harm']:.1%}"
    for index, entry in enumerate(entry for entry in metric["variations"] if not entry["baseline"]):
        first = [metric["metric"], entry["variation"], metric["better"]] if index == 0 else ["", entry["variation"], ""]
        reading = entry.get("guardrail")
        if reading is None:
            rows.append([*first, "n/a", "", tolerated, "", entry.get("reason") or entry.get("bayesian_reason", "")])
            continue
        interval = f"[{reading['harm_low']:+.1%}, {reading['harm_high']:+.1%}]"
        rows.append([*first, percent(reading["harm"]), interval, tolerated,
                     f"{reading['p_value']:.3g}{_approximate(entry)}", reading["verdict"]])
    return rows


def _guardrails(metrics: list[dict]) -> str:
    """The guardrails apart, as a text table."""
    from rich import box
    from rich.table import Table

    from optimizely_courier.text import as_text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for header in GUARDRAIL_HEADERS:
        table.add_column(header, justify="left" if header in ("guardrail", "variation", "better", "verdict")
                         else "right")
    for metric in metrics:
        for row in guardrail_rows(metric):
            table.add_row(*row)
    return GUARDRAILS_TITLE + "\n\n" + as_text(table)


def _row(entry: dict, adjusted: bool) -> list[str]:
    value = number(entry.get("adjusted_mean", entry["mean"]))
    row = [entry["variation"], f"{entry['units']:,}", number(entry["total"], ",.0f"), value]
    row += [number(entry["mean"])] if adjusted else []
    if entry["baseline"]:
        return row + ["baseline", "", "", "", "", "", "", "", ""]
    if entry["p_value"] is None:
        return row + ["n/a", "", "", "", "", "", "", "", entry.get("reason", "")]
    approximate = _approximate(entry)
    q = entry.get("q_value")
    chance, loss = entry["chance_to_beat_baseline"], entry["expected_loss"]
    return row + [percent(entry["lift"]), interval(entry, "lift"), f"{entry['p_value']:.3g}{approximate}",
                  "n/a" if q is None else f"{q:.3g}", interval(entry, "always_valid"),
                  "n/a" if entry["always_valid_p"] is None else f"{entry['always_valid_p']:.3g}",
                  "n/a" if chance is None else f"{chance:.1%}{approximate}", "n/a" if loss is None else f"{loss:.2%}",
                  "significant" if entry.get("significant") else ""]


def _approximate(entry: dict) -> str:
    """The mark of a number from a normal approximation the arms have too few units for."""
    return "" if entry["normal_approximation"]["enough_units"] else APPROXIMATE


def metric_notes(metric: dict) -> list[str]:
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
    cap = metric["cap"]
    if cap is not None:
        where = ("cap_value" if cap["quantile"] is None
                 else f"the {cap['quantile']:.4g} quantile of all units' values")
        covariate = (f"; its CUPED covariate at {_amount(cap['covariate_value'])}"
                     if cap["covariate_value"] is not None else "")
        notes.append(f"{metric['metric']}: each unit's value capped at {_amount(cap['value'])} ({where}){covariate}")
    left_out = sum(e["nonfinite_rows"] or 0 for e in metric["variations"])
    if left_out:
        notes.append(f"{metric['metric']}: {left_out:,} row(s) with a NaN or infinite value left out")
    return notes


def _amount(value: float | None) -> str:
    """A cap as a reader takes it in: whole thousands with separators, smaller values to 4 digits."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def number(value: float | None, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def interval(entry: dict, name: str) -> str:
    low, high = entry.get(name + "_low"), entry.get(name + "_high")
    if entry["lift"] is None or low is None or high is None:
        return "n/a"
    return f"[{low:+.1%}, {high:+.1%}]"
