"""`experiments/*.yml`: which experiment, its baseline, the attribution window and the metrics.

    id: checkout_button                  # names the models: exp_checkout_button__observations, __results
    experiment_id: "18786493712"
    baseline: "18802093142"              # the baseline variation_id (default: the smallest id seen)
    window: 48h                          # attribution: [decision, decision + window], both ends inclusive
    split: {"18802093142": 50, "18823341323": 50}   # the planned traffic split (default: equal)
    cuped: 14d                           # CUPED: each metric's value over this period before the decision
    segments: [country, device]          # results also per value of these decisions columns
    multiple_exposures: exclude          # visitors decided into more than one variation: left out (or `first`)
    prior: {mean: 0%, sd: 30%}           # the Bayesian reading's normal prior on the relative lift (default: flat)
    metrics:
      - {name: purchase_rate, kind: unique, event: purchase}         # 1 if the unit has a purchase
      - {name: detail_views, kind: count, event: detail_page_view}   # how many
      - {name: electronics_revenue, kind: sum, event: purchase, value: revenue_cents,
         where: {category: electronics}, cap: 99%}                   # sum of a column, filtered, each
                                                                     # unit's value capped at the 99% quantile
      - {name: support_calls, kind: count, event: support_call, guardrail: true, max_harm: 2%,
         better: lower}                                              # must not rise by more than 2%
      - {name: support_minutes, kind: sum, value: call_duration_min, # from another dbt model or seed:
         from: {model: support_calls, visitor_id: user_id, timestamp: call_start,   # its rows are the events
                timestamp_format: "%m/%d/%Y %H:%M:%S", timezone: America/New_York}}  # when call_start is text
      - {name: revenue_per_purchase, kind: ratio,                    # the sum of one metric over the
         numerator: electronics_revenue, denominator: purchases}     # sum of another, per variation

A unit is a visitor's first decision in the experiment (by time; ties broken by uuid), holdback
decisions left out (with `multiple_exposures: exclude`, a visitor whose decisions name more than one
variation is no unit of the results); a metric observation is computed from the unit's conversions (or the `from`
model's rows) within the window, 0 when it has none.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

from optimizely_courier.config.schedule import ScheduleError, parse_duration
from optimizely_courier.config.yamlfile import Section, definition_path, line_of, load_yaml
from optimizely_courier.errors import ConfigError, one_line
from optimizely_courier.feeds.sqlnames import is_reserved

EXPERIMENTS_DIR = "experiments"
MetricKind = Literal["unique", "count", "sum", "ratio"]
MultipleExposures = Literal["exclude", "first"]
Better = Literal["higher", "lower"]
EXPERIMENT_KEYS = ("id", "experiment_id", "baseline", "window", "split", "cuped", "segments", "multiple_exposures",
                   "prior", "decisions", "conversions", "metrics")
METRIC_KEYS = ("name", "kind", "event", "value", "where", "from", "numerator", "denominator", "cap", "cap_value",
               "better", "guardrail", "max_harm")
SOURCE_KEYS = ("model", "visitor_id", "timestamp", "timestamp_format", "timezone")
SOURCE_NAMES = ("model", "visitor_id", "timestamp")
# a `from` model's text timestamps: the strptime directives every engine's parser has an equivalent of
# (macros/experiments.sql), between separators
TIMESTAMP_FORMAT = re.compile(r"^(%[YymdHIMSpb]|[ /:.,T-])+\Z")
PRIOR_KEYS = ("mean", "sd")
NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")
# `__` is kept for the columns the courier derives from a metric's name (`<metric>__before`)
METRIC_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
OPTIMIZELY_ID = re.compile(r"^[0-9]+\Z")  # experiment and variation ids, as the export writes them
# the observations' columns before segments
UNIT_COLUMNS = ("visitor_id", "variation_id", "decided_at", "is_multiple_exposure")
PERCENT = re.compile(r"^(-?[0-9]+(\.[0-9]+)?)%\Z")  # a share or a relative change written as a percentage: 2.5%


@dataclass(frozen=True)
class Source:
    """A dbt model or seed whose rows are a metric's events (data the export does not have, such as
    support calls): which column holds the visitor id and which the time."""

    model: str
    visitor_id: str = "visitor_id"
    timestamp: str = "timestamp"
    timestamp_format: str | None = None  # when the timestamp column is text: how to read it (strptime)
    timezone: str = "UTC"  # the zone of the times read that way (they carry none)


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
    cap: float | None = None  # each unit's value capped at this quantile of all units' values (0 < cap < 1)
    cap_value: float | None = None  # or at this value
    better: Better = "higher"  # the direction of an improvement: the Bayesian reading's and a guardrail's
    guardrail: bool = False  # tested for harm beyond `max_harm` (one-sided), shown apart
    max_harm: float | None = None  # a guardrail's tolerated relative worsening (0.02: 2% worse)

    @property
    def observed(self) -> bool:
        """Whether each unit has a value of its own (a ratio is computed from two metrics that have)."""
        return self.kind != "ratio"

    @property
    def capped(self) -> bool:
        return self.cap is not None or self.cap_value is not None


@dataclass(frozen=True)
class Prior:
    """A normal prior on the relative lift of every comparison, for the Bayesian reading."""

    mean: float
    sd: float

    def __str__(self) -> str:
        return f"mean {self.mean * 100:g}%, sd {self.sd * 100:g}%"


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
    # a visitor decided into more than one variation: left out of the results, or counted in its first one
    multiple_exposures: MultipleExposures = "exclude"
    prior: Prior | None = None  # None: flat
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
                      multiple_exposures=s.choice("multiple_exposures", get_args(MultipleExposures),
                                                  Experiment.multiple_exposures),
                      prior=_prior(s), decisions=s.string("decisions", Experiment.decisions),
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
    reading = _reading(s)
    if kind == "ratio":
        return replace(_ratio(s, name), **reading)
    cap = _cap(s, kind)
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
    return Metric(name=name, kind=kind, event=event, value=value, where=filters, source=source, **cap, **reading)


def _reading(s: Section) -> dict:
    """How a metric's comparisons are read: its better direction, and whether it is a guardrail with
    the harm it tolerates."""
    guardrail = s.boolean("guardrail", False)
    if s.raw("max_harm") is not None and not guardrail:
        raise s.error("max_harm", "only a guardrail (`guardrail: true`) tolerates a harm")
    better = s.choice("better", get_args(Better), Metric.better)
    max_harm = _share(s, "max_harm", 0.0, math.inf) if guardrail else None
    if guardrail and max_harm is None:
        raise s.error("max_harm", "a guardrail names the harm it tolerates, relative to the baseline: such as "
                                  "`max_harm: 2%` (`0%`: none)")
    if better == "higher" and max_harm is not None and max_harm >= 1:
        raise s.error("max_harm", f"a metric that is better higher falls by less than 100%; got {max_harm:.4g}")
    return {"better": better, "guardrail": guardrail, "max_harm": max_harm}


def _cap(s: Section, kind: str) -> dict:
    """`cap` (a quantile of all units' values) or `cap_value` (a number): where each unit's value is capped."""
    if s.raw("cap") is not None and s.raw("cap_value") is not None:
        raise s.error("cap_value", "a metric takes `cap` (a quantile) or `cap_value` (a number), not both")
    key = "cap" if s.raw("cap") is not None else "cap_value" if s.raw("cap_value") is not None else None
    if key is not None and kind == "unique":
        raise s.error(key, "a `unique` metric is 0 or 1 per unit: there is nothing to cap")
    cap = _share(s, "cap", -math.inf, math.inf)
    if cap is not None and not 0 < cap < 1:
        raise s.error("cap", f"expected a quantile between 0 and 1 (exclusive), such as 0.99 or 99%; got {cap:g}")
    value = s.raw("cap_value")
    number = _finite(value)
    if value is not None and (number is None or number <= 0):
        raise s.error("cap_value", f"expected a positive number, such as 1000; got {value!r}")
    return {"cap": cap, "cap_value": number}


def _share(s: Section, key: str, low: float, high: float) -> float | None:
    """A share or a relative change: a number (0.02) or a percentage (`2%`), finite, from `low` to `high`."""
    value = s.raw(key)
    if value is None:
        return None
    found = PERCENT.match(value) if isinstance(value, str) else None
    number = _finite(float(found.group(1)) / 100 if found else value)
    if number is None or not low <= number <= high:
        span = (f" from {low:g} to {high:g}" if math.isfinite(high) else f" of at least {low:g}" if math.isfinite(low)
                else "")
        raise s.error(key, f"expected a number{span} or a percentage (such as 2%); got {value!r}")
    return number


def _finite(value: object) -> float | None:
    """A YAML number as a finite float; None for anything else (text, true/false, inf, nan, 1e400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return number if math.isfinite(number) else None


def _prior(s: Section) -> Prior | None:
    section = s.section("prior", required=False)
    if section is None:
        return None
    section.check_keys(PRIOR_KEYS)
    sd = _share(section, "sd", 0.0, math.inf)
    if section.raw("mean") is None or not sd:
        raise section.error("sd" if section.raw("mean") is not None else "mean",
                            "a prior is normal on the relative lift: give its `mean` and a positive `sd`, such as "
                            "{mean: 0%, sd: 30%}")
    mean = _share(section, "mean", -math.inf, math.inf)
    if mean <= -1:
        raise section.error("mean", f"a relative lift is above -100%; got {mean:.4g}")
    return Prior(mean=mean, sd=sd)


def _text(s: Section, key: str) -> str:
    """A value the models compare with (an event name, a `where` value): one line of printable text."""
    value = s.required(key)
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isprintable():
        raise s.error(key, f"expected one line of printable text; got {text!r}")
    return text


def _ratio(s: Section, name: str) -> Metric:
    for key in ("event", "value", "where", "from", "cap", "cap_value"):
        if s.raw(key) is not None:
            raise s.error(key, "a `ratio` metric divides two other metrics: it takes only `numerator` and "
                               "`denominator` (cap those metrics to cap it)")
    return Metric(name=name, kind="ratio", numerator=s.string("numerator"), denominator=s.string("denominator"))


def _source(s: Section) -> Source | None:
    section = s.section("from", required=False)
    if section is None:
        return None
    section.check_keys(SOURCE_KEYS)
    source = Source(model=section.string("model"), visitor_id=section.string("visitor_id", Source.visitor_id),
                    timestamp=section.string("timestamp", Source.timestamp),
                    timestamp_format=section.string("timestamp_format", None),
                    timezone=section.string("timezone", Source.timezone))
    for key in SOURCE_NAMES:
        if not COLUMN.match(getattr(source, key)):
            raise section.error(key, f"`{getattr(source, key)}` is not a {'model' if key == 'model' else 'column'} "
                                     "name")
    if source.timestamp_format is not None and not TIMESTAMP_FORMAT.match(source.timestamp_format):
        raise section.error("timestamp_format", f"`{one_line(source.timestamp_format)}` is not a format every "
                            "engine reads: use %Y %y %m %d %H %I %M %S %p %b and the separators / - : . , space T, "
                            "such as \"%m/%d/%Y %H:%M:%S\"")
    if source.timezone not in _time_zones():
        raise section.error("timezone", f"`{one_line(source.timezone)}` is not an IANA time zone, such as UTC or "
                                        "America/New_York")
    return source


@functools.cache
def _time_zones() -> set[str]:
    """IANA time zone names (zoneinfo lists them by walking its data: once)."""
    import zoneinfo

    return zoneinfo.available_timezones() | {"UTC"}
