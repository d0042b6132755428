"""Experiment definitions -> dbt models over the domain tables (written by `courier feeds compile`).

Per experiment:
    models/experiments/exp_<id>__observations.sql   one row per unit, a column per metric
    models/experiments/exp_<id>__results.sql        per variation and metric: units, total, mean, variance
The SQL comes from `templates/`; text from a definition reaches dbt only as inert SQL string literals.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jinja2

from optimizely_courier.errors import ConfigError
from optimizely_courier.experiments.definition import Experiment, Metric, Source, load_experiments
from optimizely_courier.feeds.compile import (
    MODELS_DIR,
    CompileReport,
    Output,
    generated_yaml,
    is_generated,
    template_environment,
    write_models,
)
from optimizely_courier.feeds.feed import Feed
from optimizely_courier.feeds.sqlnames import comment, jinja_arg, jinja_string, sql_name, string_literal

# The domain columns the models read: the shipped feeds' names.
DECISION_COLUMNS = ("uuid", "visitor_id", "variation_id", "experiment_id", "is_holdback", "decided_at")
CONVERSION_COLUMNS = ("visitor_id", "event_name", "converted_at")
TEMPLATES: jinja2.Environment = template_environment(__file__)
EXPERIMENT_MODELS = f"{MODELS_DIR}/experiments/"


def generated_models(root: Path, feeds: list[Feed], check: bool = False) -> CompileReport:
    """Write (or with `check`, compare) every generated model: the feeds' and the experiments'."""
    experiments = load_experiments(root)
    refs = _model_refs(root, experiments)
    for experiment in experiments:
        _check_sources(root, experiment, feeds, refs)
    return write_models(root, feeds, check, extra=compile_experiments(experiments, feeds))


def _check_sources(root: Path, experiment: Experiment, feeds: list[Feed], refs: dict[str, set[str]]) -> None:
    """Each `from` model must be a model or seed of the project (dbt cannot parse a project that refers
    to one that is not, and every run's build would fail on it), and must not depend on this
    experiment's own models (a cycle dbt refuses at every build)."""
    generated = {feed.model_name for feed in feeds}
    own = {f"exp_{experiment.id}__observations", f"exp_{experiment.id}__results"}
    for index, metric in enumerate(experiment.metrics):
        name = metric.source.model if metric.source else None
        if name is None:
            continue
        key = f"metrics[{index}].from.model"
        if not (name in generated or name in refs or any(root.glob(f"seeds/**/{name}.csv"))):
            raise ConfigError(experiment.path, key, f"no dbt model or seed `{name}` in this project "
                                                    f"(models/**/{name}.sql, seeds/{name}.csv)")
        cycle = _path_to(refs, name, own)
        if cycle:
            raise ConfigError(experiment.path, key, f"`{name}` depends on this experiment's own models "
                                                    f"({' -> '.join(cycle)}): a metric cannot read them")


REF = re.compile(r"""\bref\(\s*['"]([A-Za-z0-9_]+)['"]\s*\)""")


def _model_refs(root: Path, experiments: list[Experiment]) -> dict[str, set[str]]:
    """The models each model of the project reads: hand-written ones by their `ref(...)` calls, the
    experiments' from their definitions (generated feed models read only the raw tables' staging)."""
    refs = {path.stem: set(REF.findall(path.read_text(encoding="utf-8", errors="replace")))
            for path in (root / MODELS_DIR).rglob("*.sql") if not is_generated(path)}
    for experiment in experiments:
        refs[f"exp_{experiment.id}__observations"] = {m.source.model for m in experiment.metrics if m.source}
        refs[f"exp_{experiment.id}__results"] = {f"exp_{experiment.id}__observations"}
    return refs


def _path_to(refs: dict[str, set[str]], start: str, targets: set[str]) -> list[str] | None:
    """The chain of models from `start` to one of `targets` through what each reads, if there is one."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        model = queue.pop(0)
        if model in targets:
            return paths[model]
        for read in sorted(refs.get(model, ())):
            if read not in paths:
                paths[read] = [*paths[model], read]
                queue.append(read)
    return None


def compile_experiments(experiments: list[Experiment], feeds: list[Feed]) -> list[Output]:
    outputs = []
    for experiment in sorted(experiments, key=lambda e: e.id):
        decisions = _feed(experiment, "decisions", experiment.decisions, feeds,
                          (*DECISION_COLUMNS, *experiment.segments))
        columns = sorted({column for m in experiment.metrics if m.observed and m.source is None
                          for column in _columns(m)})
        conversions = _feed(experiment, "conversions", experiment.conversions, feeds, (*CONVERSION_COLUMNS, *columns))
        sources = _sources(experiment, conversions)
        # incremental unless a metric reads a model whose changes the record does not follow
        incremental = all(metric.source is None for metric in experiment.metrics)
        context = {"experiment": experiment, "path": comment(experiment.path), "incremental": incremental,
                   "decisions_feed": decisions.id, "conversions": conversions.model_name,
                   "conversions_feed": conversions.id,
                   "experiment_text": comment(experiment.experiment_id),
                   "experiment_literal": string_literal(experiment.experiment_id),
                   "decisions": decisions.model_name, "sources": sources,
                   "segments": [{"name": column, "sql": sql_name(column)} for column in experiment.segments],
                   "window_seconds": int(experiment.window.total_seconds()), "window_text": _window_text(experiment),
                   # with CUPED the rows of the period before the decision are read too
                   "window_start": (f"units.decided_at - interval {int(experiment.cuped.total_seconds())} second"
                                    if experiment.cuped else "units.decided_at"),
                   "metrics": _in_definition_order(experiment, sources),
                   "exclude": experiment.multiple_exposures == "exclude", "caps": _caps(experiment),
                   "results": [_result(experiment, metric) for metric in experiment.metrics]}
        models = {name: _render(f"{name}.sql", context) for name in ("observations", "results")}
        outputs += [Output(f"{EXPERIMENT_MODELS}exp_{experiment.id}__{name}.sql", sql) for name, sql in models.items()]
        # what an incremental build needs to know: when the observations' SQL changes, every unit may change
        meta = {"experiment_definition": hashlib.sha256(models["observations"].encode()).hexdigest()[:16],
                "experiment_feeds": [decisions.id, conversions.id]} if incremental else None
        # a segment column that is PII in the decisions feed is PII in the observations too
        pii = any(c.is_pii for c in decisions.columns if c.name in experiment.segments)
        outputs.append(Output(f"{EXPERIMENT_MODELS}exp_{experiment.id}.yml", _docs(experiment, meta, pii)))
    return outputs


def _docs(experiment: Experiment, meta: dict | None, pii: bool) -> str:
    """dbt docs of both models: what a row is and what each column holds; the tags `experiment` and
    (`pii`) for selectors, here rather than in the SQL so the experiment's fingerprint stays."""
    exposures = ("left out of the results: `multiple_exposures: exclude`" if experiment.multiple_exposures == "exclude"
                 else "counted in the variation of its first decision: `multiple_exposures: first`")
    metrics = [{"name": name, "description": text} for m in experiment.metrics if m.observed
               for name, text in _observation_columns(experiment, m)]
    tags = ["experiment", *(["pii"] if pii else [])]  # the results name a PII segment's values too
    observations = {"name": f"exp_{experiment.id}__observations",
                    "description": f"Experiment {experiment.experiment_id}: one row per unit, a visitor's first "
                                   "decision in the experiment (holdback left out), with its metric observations.",
                    "columns": [{"name": "visitor_id", "description": "The unit's visitor."},
                                {"name": "variation_id", "description": "The variation of the unit's first decision."},
                                {"name": "decided_at", "description": "When that decision was made (UTC)."},
                                {"name": "is_multiple_exposure", "description": "Whether the visitor's decisions "
                                 "name more than one variation (" + exposures + ")."},
                                *({"name": column, "description": f"Segment: the {column} of that decision."}
                                  for column in experiment.segments),
                                *metrics],
                    "config": {"tags": tags, **({"meta": meta} if meta else {})}}
    results = {"name": f"exp_{experiment.id}__results",
               "description": f"Experiment {experiment.experiment_id}: per variation and metric, the sufficient "
                              "statistics `courier results` tests on.", "config": {"tags": tags},
               "columns": [{"name": "variation_id", "description": "The variation."},
                           {"name": "segment", "description": "`all`, or the decisions column the row is a "
                                                              "segment of."},
                           {"name": "segment_value", "description": "`all`, or that column's value (as text)."},
                           {"name": "metric", "description": "The metric's name."},
                           {"name": "kind", "description": "unique (0 or 1 per unit), count, sum or ratio."},
                           {"name": "units", "description": "Units in the variation."},
                           {"name": "total", "description": "The sum of the observations (a ratio's numerator)."},
                           {"name": "denominator", "description": "The units, or the sum of a ratio's "
                                                                  "denominator metric."},
                           {"name": "mean", "description": "The metric's value: total / denominator."},
                           {"name": "variance", "description": "Per unit, the observations' sample variance; for "
                                                               "a ratio its delta-method variance (units times "
                                                               "that of the ratio of the two means)."},
                           {"name": "covariate_total", "description": "CUPED: the sum of the observations' "
                                                                      "values before the decision (0 without)."},
                           {"name": "covariate_variance", "description": "CUPED: their sample variance."},
                           {"name": "covariate_covariance", "description": "CUPED: the sample covariance of the "
                                                                           "observations and their values before."},
                           {"name": "nonfinite_rows", "description": "Rows a sum left out, their value NaN or "
                                                                     "infinite (0 for other kinds)."},
                           {"name": "cap", "description": "Where each unit's value was capped (`cap`: that "
                                                          "quantile of all units' values; `cap_value`); empty when "
                                                          "not capped."},
                           {"name": "covariate_cap", "description": "CUPED: where each unit's covariate was "
                                                                    "capped."}]}
    return generated_yaml({"version": 2, "models": [observations, results]}, experiment.path)


def _metric_text(metric: Metric, window: str) -> str:
    if not metric.observed:
        return f"Per variation, the sum of {metric.numerator} over the sum of {metric.denominator}."
    filters = "".join(f" with {column} = {value}" for column, value in metric.where)
    if metric.source is None:
        events = f"`{metric.event}` events{filters} within {window} of its decision"
    else:
        events = (f"rows of `{metric.source.model}`{filters} (its {metric.source.visitor_id} the unit's visitor, "
                  f"its {metric.source.timestamp} within {window} of the decision)")
    if metric.kind == "unique":
        return f"1 if the unit has {events}, else 0."
    if metric.kind == "count":
        return f"The number of the unit's {events}."
    return f"The sum of {metric.value} over the unit's {events} (0 when none)."


def _feed(experiment: Experiment, key: str, table: str, feeds: list[Feed], needed: tuple[str, ...]) -> Feed:
    """The feed that builds domain table `table`, which must have the columns the models read."""
    feed = next((f for f in feeds if f.domain_table == table), None)
    if feed is None:
        raise ConfigError(experiment.path, key, f"no feed builds the domain table `{table}`")
    names = {c.name for c in feed.columns}
    missing = [c for c in needed if c not in names]
    if missing:
        raise ConfigError(experiment.path, key, f"`{table}` ({feed.path}) has no column {', '.join(missing)}")
    return feed


def _columns(metric: Metric) -> list[str]:
    """The conversions columns a metric reads besides the event name."""
    return ([metric.value] if metric.value else []) + [column for column, _ in metric.where]


def _sources(experiment: Experiment, conversions: Feed) -> list[dict]:
    """The models the metrics read, each with its metrics, in the order of the definition: the
    conversions domain table, and each `from` model. With CUPED each metric has a second column,
    `<name>__before`: its value over the period before the decision."""
    sources: dict[Source, dict] = {}
    for metric in (m for m in experiment.metrics if m.observed):
        source = metric.source or Source(model=conversions.model_name, timestamp="converted_at")
        if source not in sources:
            described = (f"`{experiment.conversions}`" if metric.source is None
                         else f"`{source.model}` (by {source.visitor_id}, at {source.timestamp})")
            name = f"from_{source.model}"
            taken = sum(1 for entry in sources.values() if entry["model"] == source.model)
            sources[source] = {"name": f"{name}_{taken + 1}" if taken else name, "model": source.model,
                               "text": described, "visitor_id": sql_name(source.visitor_id),
                               "time": _time(source), "metrics": [],
                               "check": _timestamp_check(experiment, metric) if metric.source else None}
        entry = sources[source]
        time = entry["time"]
        after = f"{time} >= units.decided_at" if experiment.cuped else None
        entry["metrics"].append({**_metric(metric, metric.name, after), "source": entry["name"]})
        if metric.kind == "sum":
            entry["metrics"].append({**_nonfinite(metric, after), "source": entry["name"]})
        if experiment.cuped:
            entry["metrics"].append({**_metric(metric, covariate_name(metric), f"{time} < units.decided_at"),
                                     "source": entry["name"]})
    return list(sources.values())


def _time(source: Source) -> str:
    """A source row's time: its timestamp column, or that text read with the declared format and zone."""
    if source.timestamp_format is None:
        return f"attributed.{sql_name(source.timestamp)}"
    return (f"{{{{ courier_parse_timestamp({_attributed(source.timestamp)}, {jinja_string(source.timestamp_format)}, "
            f"{jinja_string(source.timezone)}) }}}}")


def _timestamp_check(experiment: Experiment, metric: Metric) -> str | None:
    """For a `from` model read without a `timestamp_format`: a check, when the build runs, that its
    timestamp column is not text (DuckDB would fail comparing it, naming none of these)."""
    source = metric.source
    if source is None or source.timestamp_format is not None:
        return None
    names = ", ".join(jinja_string(text) for text in (source.timestamp, experiment.path, experiment.id, metric.name))
    return f"{{{{ courier_require_timestamp(ref({jinja_string(source.model)}), {names}) }}}}"


def _attributed(column: str) -> str:
    """`attributed.<column>`, as a macro argument (a quoted name stays quoted by the adapter)."""
    name = sql_name(column)
    return f"'attributed.{name}'" if name == column else f"'attributed.' ~ {jinja_arg(name)}"


def _in_definition_order(experiment: Experiment, sources: list[dict]) -> list[dict]:
    """The observations' metric columns in the order the definition lists the metrics (as the docs do)."""
    columns = {column["name"]: column for source in sources for column in source["metrics"]}
    return [columns[name] for m in experiment.metrics if m.observed for name, _ in _observation_columns(experiment, m)]


def _observation_columns(experiment: Experiment, metric: Metric) -> list[tuple[str, str]]:
    """A metric's columns in the observations, each with what it holds: its value, the rows a sum left
    out, and its CUPED covariate."""
    columns = [(metric.name, _metric_text(metric, _window_text(experiment)))]
    if metric.kind == "sum":
        columns.append((nonfinite_name(metric), f"How many of those rows {metric.name} left out: their "
                                                f"{metric.value} is NaN or infinite."))
    if experiment.cuped:
        days = f"{experiment.cuped.total_seconds() / 86400:g} days"
        columns.append((covariate_name(metric), f"CUPED covariate: {metric.name} over the {days} before the "
                                                "decision."))
    return columns


def nonfinite_name(metric: Metric) -> str:
    """The observations column counting the unit's rows a `sum` left out: their value NaN or infinite."""
    return f"{metric.name}__nonfinite"


def covariate_name(metric: Metric) -> str:
    """The observations column of a metric's CUPED covariate."""
    return f"{metric.name}__before"


def _metric(metric: Metric, name: str, period: str | None) -> dict:
    """The metric's aggregate over a unit's attributed rows (NULL when the unit has none: 0 in the model),
    of the rows in `period` only when given."""
    when = _when(metric, period)
    if metric.kind == "unique":
        sql = f"max(case when {when} then 1 else 0 end)"
    elif metric.kind == "count":
        sql = f"count(case when {when} then 1 end)"
    else:  # NaN and infinite values are left out (and counted: `_nonfinite`), or they would be the total
        sql = f"sum(case when {when} and {_finite(metric)} then attributed.{sql_name(metric.value)} end)"
    return {"name": name, "kind": metric.kind, "sql": sql}


def _nonfinite(metric: Metric, period: str | None) -> dict:
    """How many of the unit's rows a `sum` metric left out because their value is NaN or infinite."""
    sql = f"count(case when {_when(metric, period)} and not {_finite(metric)} then 1 end)"
    return {"name": nonfinite_name(metric), "kind": "count", "sql": sql}


def _when(metric: Metric, period: str | None) -> str:
    """The condition on an attributed row: the metric's event and filters, and `period` when given."""
    conditions = ([f"attributed.event_name = {string_literal(metric.event)}"] if metric.event is not None else []) + [
        f"attributed.{sql_name(column)} = {string_literal(value)}" for column, value in metric.where] + (
        [period] if period else [])
    return " and ".join(conditions) or "true"


def _finite(metric: Metric) -> str:
    return "{{ courier_is_finite(" + _attributed(metric.value) + ") }}"


def _result(experiment: Experiment, metric: Metric) -> dict:
    """What the results model stacks for a metric: per unit its observation, its denominator and its
    CUPED covariate (0 without: a ratio has none), each capped where its metric is, and the caps."""
    cuped = experiment.cuped is not None
    if metric.observed:
        covariate = covariate_name(metric)
        return {"name": metric.name, "kind": metric.kind, "observation": _capped(metric, metric.name),
                "denominator": "1", "covariate": _capped(metric, covariate) if cuped else "0",
                "nonfinite": f"units.{nonfinite_name(metric)}" if metric.kind == "sum" else "0",
                "cap": _cap(metric, metric.name), "covariate_cap": _cap(metric, covariate) if cuped else NO_CAP}
    parts = {m.name: m for m in experiment.metrics}
    return {"name": metric.name, "kind": metric.kind, "observation": _capped(parts[metric.numerator], metric.numerator),
            "denominator": _capped(parts[metric.denominator], metric.denominator), "covariate": "0",
            "nonfinite": "0", "cap": NO_CAP, "covariate_cap": NO_CAP}


NO_CAP = "cast(null as double)"


def _cap(metric: Metric, column: str) -> str:
    """Where the results model caps an observations column of `metric`: its quantile, taken in the
    `caps` CTE; its `cap_value`, a number; or nowhere."""
    if metric.cap is not None:
        return f"caps.{column}__cap"
    return NO_CAP if metric.cap_value is None else f"cast({metric.cap_value!r} as double)"


def _capped(metric: Metric, column: str) -> str:
    """An observations column of `metric` as the results read it: capped at its cap when it has one."""
    return f"least(units.{column}, {_cap(metric, column)})" if metric.capped else f"units.{column}"


def _caps(experiment: Experiment) -> list[dict]:
    """The quantile caps (the `caps` CTE, one row): each such metric's `cap` quantile of all the counted
    units' values, pooled over the variations (a new value each build as units come in), and its CUPED
    covariate's."""
    return [{"name": f"{column}__cap", "sql": f"percentile_cont({metric.cap!r}) within group (order by units.{column})"}
            for metric in experiment.metrics if metric.cap is not None
            for column in (metric.name, *([covariate_name(metric)] if experiment.cuped else []))]


def _window_text(experiment: Experiment) -> str:
    hours = experiment.window.total_seconds() / 3600
    return f"{hours:g} hours"


def _render(template: str, context: dict) -> str:
    return TEMPLATES.get_template(template).render(**context)
