"""`courier feeds diff` on experiments: what a change to experiments/*.yml does to their results.

A new experiment, metric or segment is safe (it adds results); anything that changes what existing
results mean (the experiment, its baseline, window, split, CUPED period, multiple exposures, prior,
the domain tables read, a metric's definition, cap or reading) or removes some needs attention: the
next build recomputes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields
from pathlib import Path

from optimizely_courier.config.yamlfile import parse_yaml
from optimizely_courier.errors import ConfigError
from optimizely_courier.experiments.definition import EXPERIMENTS_DIR, Experiment, experiment_from, load_experiments
from optimizely_courier.feeds.review import ATTENTION, SAFE, Change, base_yaml_files

# Settings whose change changes every result of the experiment.
SETTINGS = ("experiment_id", "baseline", "window", "split", "cuped", "multiple_exposures", "prior", "decisions",
            "conversions")


def experiment_changes(root: Path, ref: str) -> list[Change]:
    """The changes to experiment definitions between `ref` and the working tree."""
    old = {e.id: e for e in _base_experiments(root, ref)}
    new = {e.id: e for e in load_experiments(root)}
    return [change for identifier in sorted(old.keys() | new.keys())
            for change in _changes(old.get(identifier), new.get(identifier))]


def _base_experiments(root: Path, ref: str) -> list[Experiment]:
    experiments = []
    for path, text in base_yaml_files(root, ref, EXPERIMENTS_DIR):
        try:
            experiments.append(experiment_from(parse_yaml(text, path), path))
        except ConfigError:  # a definition broken at the base: compared as absent
            continue
    return experiments


def _changes(old: Experiment | None, new: Experiment | None) -> list[Change]:
    experiment = new or old
    assert experiment is not None

    def change(severity: str, kind: str, message: str) -> Change:
        return Change(severity, "experiments", experiment.id, kind, message, experiment.path)

    if old is None:
        return [change(SAFE, "experiment_added", f"new experiment `{new.id}` on experiment {new.experiment_id} "
                                                 f"({len(new.metrics)} metrics)")]
    if new is None:
        return [change(ATTENTION, "experiment_removed", f"experiment `{old.id}` removed: its results models are no "
                                                        "longer generated")]
    changes = [change(ATTENTION, name, f"{name} changed from {_text(getattr(old, name))} to "
                                       f"{_text(getattr(new, name))}: every result is recomputed")
               for name in SETTINGS if getattr(old, name) != getattr(new, name)]
    changes += _listed(change, "segment", old.segments, new.segments)
    old_metrics, new_metrics = {m.name: m for m in old.metrics}, {m.name: m for m in new.metrics}
    changes += _listed(change, "metric", old_metrics, new_metrics)
    for name in sorted(old_metrics.keys() & new_metrics.keys()):
        before, after = old_metrics[name], new_metrics[name]
        differing = [f.name for f in fields(before) if getattr(before, f.name) != getattr(after, f.name)]
        if differing:
            details = "; ".join(f"{field} from {_text(getattr(before, field))} to {_text(getattr(after, field))}"
                                for field in differing)
            changes.append(change(ATTENTION, "metric_changed", f"metric `{name}` changed ({details}): its results "
                                                               "are recomputed"))
    return changes


def _listed(change, noun: str, old, new) -> list[Change]:  # noqa: ANN001 - the change factory; names or dicts
    """Names added (safe: more results) and removed (needs attention: results go away)."""
    added = [change(SAFE, f"{noun}_added", f"{noun} `{name}` added") for name in new if name not in old]
    removed = [change(ATTENTION, f"{noun}_removed", f"{noun} `{name}` removed: its results go away")
               for name in old if name not in new]
    return added + removed


def _text(value: object) -> str:
    """A setting as the definition writes it: `48h`, `category: electronics`, ..."""
    if value is None or value == ():
        return "none"
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
        size, unit = next((size, unit) for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))
                          if seconds % size == 0)
        return f"`{seconds // size}{unit}`"
    if isinstance(value, tuple) and all(isinstance(pair, tuple) and len(pair) == 2 for pair in value):
        return "`" + ", ".join(f"{key}: {item}" for key, item in value) + "`"
    return f"`{value}`"
