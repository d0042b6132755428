"""Experiment definitions -> dbt models over the domain tables (written by `courier feeds compile`).

Per experiment:
    models/experiments/exp_<id>__observations.sql   one row per unit, a column per metric
    models/experiments/exp_<id>__results.sql        per variation and metric: units, total, mean, variance
The SQL comes from `templates/`; text from a definition reaches dbt only as inert SQL string literals.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2

from optimizely_courier.errors import ConfigError
from optimizely_courier.experiments.definition import Experiment, Metric, Source, load_experiments
from optimizely_courier.feeds.compile import (
    MODELS_DIR,
    CompileReport,
    Output,
    generated_yaml,
    inert,
    sql_name,
    template_environment,
    write_models,
)
from optimizely_courier.feeds.feed import Feed

# The domain columns the models read: the shipped feeds' names.
DECISION_COLUMNS = ("uuid", "visitor_id", "variation_id", "experiment_id", "is_holdback", "decided_at")
CONVERSION_COLUMNS = ("visitor_id", "event_name", "converted_at")
TEMPLATES: jinja2.Environment = template_environment(__file__)
EXPERIMENT_MODELS = f"{MODELS_DIR}/experiments/"


def generated_models(root: Path, feeds: list[Feed], check: bool = False) -> CompileReport:
    """Write (or with `check`, compare) every generated model: the feeds' and the experiments'."""
    experiments = load_experiments(root)
    for experiment in experiments:
        _check_sources_exist(root, experiment, feeds)
    return write_models(root, feeds, check, extra=compile_experiments(experiments, feeds))


def _check_sources_exist(root: Path, experiment: Experiment, feeds: list[Feed]) -> None:
    """Each `from` model must be a model or seed of the project: dbt cannot parse a project that refers
    to one that is not (and every run's build would fail on it)."""
    generated = {feed.model_name for feed in feeds}
    for index, metric in enumerate(experiment.metrics):
        name = metric.source.model if metric.source else None
        if name is None or name in generated or any(root.glob(f"models/**/{name}.sql")) \
                or any(root.glob(f"seeds/**/{name}.csv")):
            continue
        raise ConfigError(experiment.path, f"metrics[{index}].from.model",
                          f"no dbt model or seed `{name}` in this project (models/**/{name}.sql, seeds/{name}.csv)")


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
        context = {"experiment": experiment, "path": inert(experiment.path), "incremental": incremental,
                   "decisions_feed": decisions.id, "conversions": conversions.model_name,
                   "conversions_feed": conversions.id,
                   "experiment_text": inert(experiment.experiment_id),
                   "experiment_literal": _literal(experiment.experiment_id),
                   "decisions": decisions.model_name, "sources": sources,
                   "segments": [{"name": inert(column), "sql": sql_name(column)} for column in experiment.segments],
                   "window_seconds": int(experiment.window.total_seconds()), "window_text": _window_text(experiment),
                   # with CUPED the rows of the period before the decision are read too
                   "window_start": (f"units.decided_at - interval {int(experiment.cuped.total_seconds())} second"
                                    if experiment.cuped else "units.decided_at"),
                   "metrics": _in_definition_order(experiment, sources),
                   "results": [_result(metric, experiment.cuped is not None) for metric in experiment.metrics]}
        models = {name: _render(f"{name}.sql", context) for name in ("observations", "results")}
        outputs += [Output(f"{EXPERIMENT_MODELS}exp_{experiment.id}__{name}.sql", sql) for name, sql in models.items()]
        # what an incremental build needs to know: when the observations' SQL changes, every unit may change
        meta = {"experiment_definition": hashlib.sha256(models["observations"].encode()).hexdigest()[:16],
                "experiment_feeds": [decisions.id, conversions.id]} if incremental else None
        outputs.append(Output(f"{EXPERIMENT_MODELS}exp_{experiment.id}.yml", _docs(experiment, meta)))
    return outputs


def _docs(experiment: Experiment, meta: dict | None) -> str:
    """dbt docs of both models: what a row is and what each column holds."""
    window = _window_text(experiment)
    metrics = [{"name": m.name, "description": _metric_text(m, window)} for m in experiment.metrics if m.observed]
    if experiment.cuped:
        days = f"{experiment.cuped.total_seconds() / 86400:g} days"
        metrics = [column for metric in metrics for column in (
            metric, {"name": f"{metric['name']}__before", "description": f"CUPED covariate: the same over the "
                                                                         f"{days} before the decision."})]
    observations = {"name": f"exp_{experiment.id}__observations",
                    "description": f"Experiment {experiment.experiment_id}: one row per unit, a visitor's first "
                                   "decision in the experiment (holdback left out), with its metric observations.",
                    "columns": [{"name": "visitor_id", "description": "The unit's visitor."},
                                {"name": "variation_id", "description": "The variation of the unit's first decision."},
                                {"name": "decided_at", "description": "When that decision was made (UTC)."},
                                *({"name": column, "description": f"Segment: the {column} of that decision."}
                                  for column in experiment.segments),
                                *metrics],
                    **({"config": {"meta": meta}} if meta else {})}
    results = {"name": f"exp_{experiment.id}__results",
               "description": f"Experiment {experiment.experiment_id}: per variation and metric, the sufficient "
                              "statistics `courier results` tests on.",
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
                                                                           "observations and their values before."}]}
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
                               "timestamp": sql_name(source.timestamp), "metrics": []}
        entry = sources[source]
        time = f"attributed.{entry['timestamp']}"
        after = f"{time} >= units.decided_at" if experiment.cuped else None
        entry["metrics"].append({**_metric(metric, metric.name, after), "source": entry["name"]})
        if experiment.cuped:
            entry["metrics"].append({**_metric(metric, covariate_name(metric), f"{time} < units.decided_at"),
                                     "source": entry["name"]})
    return list(sources.values())


def _in_definition_order(experiment: Experiment, sources: list[dict]) -> list[dict]:
    """The observations' metric columns in the order the definition lists the metrics (as the docs do)."""
    columns = {column["name"]: column for source in sources for column in source["metrics"]}
    names = [(m.name, covariate_name(m)) if experiment.cuped else (m.name,) for m in experiment.metrics if m.observed]
    return [columns[name] for pair in names for name in pair]


def covariate_name(metric: Metric) -> str:
    """The observations column of a metric's CUPED covariate."""
    return f"{metric.name}__before"


def _metric(metric: Metric, name: str, period: str | None) -> dict:
    """The metric's aggregate over a unit's attributed rows (NULL when the unit has none: 0 in the model),
    of the rows in `period` only when given."""
    conditions = ([f"attributed.event_name = {_literal(metric.event)}"] if metric.event is not None else []) + [
        f"attributed.{sql_name(column)} = {_literal(value)}" for column, value in metric.where] + (
        [period] if period else [])
    when = " and ".join(conditions) or "true"
    if metric.kind == "unique":
        sql = f"max(case when {when} then 1 else 0 end)"
    elif metric.kind == "count":
        sql = f"count(case when {when} then 1 end)"
    else:
        sql = f"sum(case when {when} then attributed.{sql_name(metric.value)} end)"
    return {"name": name, "kind": metric.kind, "sql": sql}


def _result(metric: Metric, cuped: bool) -> dict:
    """What the results model stacks for a metric: per unit its observation, its denominator and its
    CUPED covariate (0 without: a ratio has none)."""
    if metric.observed:
        return {"name": metric.name, "kind": metric.kind, "observation": metric.name, "denominator": "1",
                "covariate": covariate_name(metric) if cuped else "0"}
    return {"name": metric.name, "kind": metric.kind, "observation": metric.numerator,
            "denominator": metric.denominator, "covariate": "0"}


def _literal(text: str) -> str:
    """A SQL string literal holding `text`, inert to dbt's Jinja."""
    return "'" + inert(text.replace("'", "''")) + "'"


def _window_text(experiment: Experiment) -> str:
    hours = experiment.window.total_seconds() / 3600
    return f"{hours:g} hours"


def _render(template: str, context: dict) -> str:
    return TEMPLATES.get_template(template).render(**context)
