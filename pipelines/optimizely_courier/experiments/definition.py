"""`experiments/*.yml`: which experiment, its baseline, the attribution window and the metrics.

    id: checkout_button                  # names the models: exp_checkout_button__observations, __results
    experiment_id: "18786493712"
    baseline: "18802093142"              # the baseline variation_id (default: the smallest id seen)
    window: 48h                          # attribution: [decision, decision + window], both ends inclusive
    split: {"18802093142": 50, "18823341323": 50}   # the planned traffic split (default: equal)
    cuped: 14d                           # CUPED: each metric's value over this period before the decision
    segments: [country, device]          # results also per value of these decisions columns
    metrics:
      - {name: purchase_rate, kind: unique, event: purchase}         # 1 if the unit has a purchase
      - {name: detail_views, kind: count, event: detail_page_view}   # how many
      - {name: electronics_revenue, kind: sum, event: purchase, value: revenue_cents,
         where: {category: electronics}}                             # sum of a column, filtered
      - {name: support_minutes, kind: sum, value: call_duration_min, # from another dbt model or seed:
         from: {model: support_calls, visitor_id: user_id, timestamp: call_start}}  # its rows are the events
      - {name: revenue_per_purchase, kind: ratio,                    # the sum of one metric over the
         numerator: electronics_revenue, denominator: purchases}     # sum of another, per variation

A unit is a visitor's first decision in the experiment (by time; ties broken by uuid), holdback
decisions left out; a metric observation is computed from the unit's conversions (or the `from`
model's rows) within the window, 0 when it has none.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from optimizely_courier.config.schedule import ScheduleError, parse_duration
from optimizely_courier.config.yamlfile import Section, definition_path, line_of, load_yaml
from optimizely_courier.errors import ConfigError
from optimizely_courier.feeds.sqlnames import is_reserved

EXPERIMENTS_DIR = "experiments"
MetricKind = Literal["unique", "count", "sum", "ratio"]
EXPERIMENT_KEYS = ("id", "experiment_id", "baseline", "window", "split", "cuped", "segments", "decisions",
                   "conversions", "metrics")
METRIC_KEYS = ("name", "kind", "event", "value", "where", "from", "numerator", "denominator")
SOURCE_KEYS = ("model", "visitor_id", "timestamp")
NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")
# `__` is kept for the columns the courier derives from a metric's name (`<metric>__before`)
METRIC_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
OPTIMIZELY_ID = re.compile(r"^[0-9]+\Z")  # experiment and variation ids, as the export writes them
UNIT_COLUMNS = ("visitor_id", "variation_id", "decided_at")  # the observations' columns before segments


@dataclass(frozen=True)
class Source:
    """A dbt model or seed whose rows are a metric's events (data the export does not have, such as
    support calls): which column holds the visitor id and which the time."""

    model: str
    visitor_id: str = "visitor_id"
    timestamp: str = "timestamp"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: MetricKind
    event: str | None = None  # the conversions' event name (metrics of the conversions only)
    value: str | None = None  # the column a `sum` adds up
    where: tuple[tuple[str, str], ...] = ()  # column = text value, all of them
    source: Source | None = None  # None: the conversions domain table
    numerator: str | None = None  # a ratio's metrics (others of the experiment): sum over sum, per variation
    denominator: str | None = None

    @property
    def observed(self) -> bool:
        """Whether each unit has a value of its own (a ratio is computed from two metrics that have)."""
        return self.kind != "ratio"


@dataclass(frozen=True)
class Experiment:
    id: str
    experiment_id: str
    metrics: tuple[Metric, ...]
    path: str  # relative to the project
    baseline: str | None = None
    window: dt.timedelta = dt.timedelta(hours=48)
    split: tuple[tuple[str, float], ...] = ()  # planned weight per variation_id; () is an equal split
    # CUPED: each metric's value over this period before the unit's decision is its covariate (None: off)
    cuped: dt.timedelta | None = None
    segments: tuple[str, ...] = ()  # decisions columns: the unit's first decision's value splits the results
    decisions: str = "Optimizely:Decisions"  # domain tables
    conversions: str = "Optimizely:Conversions"


def experiment_files(root: Path) -> list[Path]:
    directory = root / EXPERIMENTS_DIR
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def load_experiments(root: Path) -> list[Experiment]:
    """Every experiment definition under `root/experiments`, validated; ids are unique."""
    experiments = [parse_experiment(path, root) for path in experiment_files(root)]
    seen: dict[str, str] = {}
    for experiment in experiments:
        if experiment.id in seen:
            raise ConfigError(experiment.path, "id", f"`{experiment.id}` is also the id of {seen[experiment.id]}")
        seen[experiment.id] = experiment.path
    return experiments


def parse_experiment(path: Path, root: Path) -> Experiment:
    return experiment_from(load_yaml(path), definition_path(path, root))


def experiment_from(data: object, relative: str) -> Experiment:
    """An experiment from its parsed YAML (`relative`: its path in the project, for messages)."""
    s = Section(data, relative)
    s.check_keys(EXPERIMENT_KEYS)
    experiment_id = _optimizely_id(s, "experiment_id")
    identifier = s.string("id")
    if not NAME.match(identifier):
        raise s.error("id", "use lower-case letters, digits and `_`, starting with a letter")
    window, cuped = _duration(s, "window", "48h"), _duration(s, "cuped", None)
    items = s.items("metrics")
    metrics = [_metric(Section(item, relative, f"metrics[{index}]", line_of(items, index)))
               for index, item in enumerate(items)]
    if not metrics:
        raise s.error("metrics", "expected at least one metric")
    segments = _segments(s)
    _check_names(s, identifier, metrics, segments)
    observed = {m.name for m in metrics if m.observed}
    for index, metric in enumerate(metrics):
        for part in ("numerator", "denominator") if not metric.observed else ():
            if getattr(metric, part) not in observed:
                raise s.error(f"metrics[{index}].{part}", f"`{getattr(metric, part)}` is not a unique, count or sum "
                                                          "metric of this experiment")
    baseline = _optimizely_id(s, "baseline") if s.has("baseline") else None
    return Experiment(id=identifier, experiment_id=experiment_id, metrics=tuple(metrics), path=relative,
                      baseline=baseline, window=window, split=_split(s), cuped=cuped, segments=segments,
                      decisions=s.string("decisions", Experiment.decisions),
                      conversions=s.string("conversions", Experiment.conversions))


def _optimizely_id(s: Section, key: str) -> str:
    """An experiment or variation id: digits, as Optimizely writes them (YAML may read them as numbers)."""
    value = s.required(key)
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not OPTIMIZELY_ID.match(text):
        raise s.error(key, f"expected an Optimizely id (digits, such as \"18786493712\"); got {text!r}")
    return text


def _check_names(s: Section, identifier: str, metrics: list[Metric], segments: tuple[str, ...]) -> None:
    """Each column of the observations model has one meaning: the unit's, a segment's or a metric's."""
    taken = {column: "a column of every unit" for column in UNIT_COLUMNS}
    for column in segments:
        if column in taken:
            raise s.error("segments", f"`{column}` is {taken[column]}; segments are other decisions columns")
        taken[column] = "a segment"
    for index, metric in enumerate(metrics):
        key = f"metrics[{index}].name"
        if metric.name in taken:
            raise s.error(key, f"`{metric.name}` is {taken[metric.name]}: give the metric another name")
        if is_reserved(metric.name):
            raise s.error(key, f"`{metric.name}` is a word SQL reserves on some engine: give the metric another name")
        if metric.source is not None and metric.source.model.startswith(f"exp_{identifier}__"):
            raise s.error(f"metrics[{index}].from.model", f"`{metric.source.model}` is built from this experiment: "
                                                         "a metric cannot read its own results")
        taken[metric.name] = "the name of another metric"


def _segments(s: Section) -> tuple[str, ...]:
    segments = s.raw("segments", [])
    if not isinstance(segments, list) or not all(isinstance(c, str) and COLUMN.match(c) for c in segments):
        raise s.error("segments", "expected a list of decisions column names, such as [country, device]")
    if len(set(segments)) != len(segments):
        raise s.error("segments", "a column appears twice")
    return tuple(segments)


def _duration(s: Section, key: str, default: str | None) -> dt.timedelta | None:
    text = s.raw(key, default)
    if text is None:
        return None
    try:
        return parse_duration(str(text))
    except ScheduleError as exc:
        raise s.error(key, str(exc)) from None


def _split(s: Section) -> tuple[tuple[str, float], ...]:
    section = s.section("split", required=False)
    if section is None:
        return ()
    weights = tuple(sorted((str(variation), weight) for variation, weight in section.data.items()))
    for variation, _ in weights:
        if not OPTIMIZELY_ID.match(variation):
            raise s.error("split", f"expected variation ids (digits) as keys; got {variation!r}")
    if len(weights) < 2 or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0
                                   and math.isfinite(w) for _, w in weights):
        raise s.error("split", "expected a positive weight per variation_id, such as {\"v1\": 50, \"v2\": 50}")
    return tuple((variation, float(weight)) for variation, weight in weights)


def _metric(s: Section) -> Metric:
    s.check_keys(METRIC_KEYS)
    name = s.string("name")
    if not METRIC_NAME.match(name):
        raise s.error("name", "use lower-case letters, digits and single `_`s, starting with a letter (`__` is "
                              "kept for the columns the courier derives, such as `<metric>__before`)")
    kind = s.choice("kind", get_args(MetricKind))
    if kind == "ratio":
        return _ratio(s, name)
    for key in ("numerator", "denominator"):
        if s.raw(key) is not None:
            raise s.error(key, "only a `ratio` metric has a numerator and a denominator")
    value = s.string("value", None)
    if (kind == "sum") != (value is not None):
        raise s.error("value", "a `sum` metric names the column it adds up (`value`); other kinds take none")
    where = s.section("where", required=False)
    filters = tuple(sorted((str(k), _text(where, str(k))) for k in (where.data if where else ())))
    for column in [value, *(k for k, _ in filters)]:
        if column is not None and not COLUMN.match(column):
            raise s.error("value" if column == value else "where", f"`{column}` is not a column name")
    source = _source(s)
    if source is not None and s.raw("event") is not None:
        raise s.error("event", "a metric `from` a model counts that model's rows: it takes no `event`")
    event = None if source is not None else _text(s, "event")
    return Metric(name=name, kind=kind, event=event, value=value, where=filters, source=source)


def _text(s: Section, key: str) -> str:
    """A value the models compare with (an event name, a `where` value): one line of printable text."""
    value = s.required(key)
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isprintable():
        raise s.error(key, f"expected one line of printable text; got {text!r}")
    return text


def _ratio(s: Section, name: str) -> Metric:
    for key in ("event", "value", "where", "from"):
        if s.raw(key) is not None:
            raise s.error(key, "a `ratio` metric divides two other metrics: it takes only `numerator` and "
                               "`denominator`")
    return Metric(name=name, kind="ratio", numerator=s.string("numerator"), denominator=s.string("denominator"))


def _source(s: Section) -> Source | None:
    section = s.section("from", required=False)
    if section is None:
        return None
    section.check_keys(SOURCE_KEYS)
    source = Source(model=section.string("model"), visitor_id=section.string("visitor_id", Source.visitor_id),
                    timestamp=section.string("timestamp", Source.timestamp))
    for key in SOURCE_KEYS:
        if not COLUMN.match(getattr(source, key)):
            raise section.error(key, f"`{getattr(source, key)}` is not a {'model' if key == 'model' else 'column'} "
                                     "name")
    return source
