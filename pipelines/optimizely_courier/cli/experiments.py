"""`courier plan`: the units and days an experiment needs (the library is experiments/planning.py)."""

from __future__ import annotations

import click

from optimizely_courier.cli.common import current_project
from optimizely_courier.text import to_json


class Relative(click.ParamType):
    """A relative effect: a percentage (`5%`) or a fraction (0.05), above 0."""

    name = "PERCENT"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if isinstance(value, float):
            return value
        text = str(value).strip()
        percent = text.endswith("%")
        try:
            number = float(text[:-1]) / 100 if percent else float(text)
        except ValueError:
            self.fail(f"expected a percentage such as 5% (or a fraction such as 0.05); got {value!r}", param, ctx)
        if not percent and number >= 1:  # `--mde 5` is more likely 5% than 500%: say which was meant
            self.fail(f"a number without % is a fraction: write 5% (or 0.05) for five percent; got {value!r}",
                      param, ctx)
        if not 0 < number < 10:
            self.fail(f"expected an effect above 0% and below 1000%; got {value!r}", param, ctx)
        return number


SHARE = click.FloatRange(0, 1, min_open=True, max_open=True)


@click.command()
@click.argument("experiment")
@click.option("--mde", type=Relative(), required=True,
              help="The minimum detectable effect, relative to the baseline: 5% (or 0.05).")
@click.option("--power", type=SHARE, default=0.8, show_default=True, help="The chance to detect that effect.")
@click.option("--alpha", type=SHARE, default=0.05, show_default=True, help="The two-sided test's significance level.")
@click.option("--metric", help="Only this metric (required with --mean and --sd).")
@click.option("--mean", type=float, help="The baseline's mean per unit, instead of the observed one.")
@click.option("--sd", type=click.FloatRange(0, min_open=True),
              help="The baseline's standard deviation per unit (a `unique` metric's follows from its --mean).")
@click.option("--daily-units", type=click.FloatRange(0, min_open=True), metavar="N",
              help="Units enrolled a day, all variations together, instead of the observed enrollment.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def plan(ctx: click.Context, experiment: str, mde: float, power: float, alpha: float, metric: str | None,
         mean: float | None, sd: float | None, daily_units: float | None, as_json: bool) -> None:
    """Plan an experiment: per metric, the units per variation needed to detect a relative effect of
    --mde with --power in the two-sided test `courier results` runs (at --alpha), and the days to
    reach them at the observed daily enrollment.

    The baseline's mean and variance per unit are those of its results model (the same units and caps;
    CUPED-adjusted when the experiment uses CUPED), and the units are shared as its `split` plans (equal
    by default). Before an experiment has run, give the baseline's --mean and --sd of a --metric and
    the --daily-units you expect.

    \b
    Examples:
      courier plan checkout_button --mde 5%
      courier plan checkout_button --mde 2% --power 0.9 --alpha 0.01
      courier plan checkout_button --mde 5% --metric purchase_rate --mean 0.1 --daily-units 4000
      courier plan checkout_button --mde 5% --json
    """
    from optimizely_courier.experiments.planning import plan as make_plan
    from optimizely_courier.experiments.planning import render_plan

    project = current_project(ctx)
    found = make_plan(project.root, project.warehouse, experiment, mde, power, alpha, metric, mean, sd, daily_units)
    click.echo(to_json(found) if as_json else render_plan(found))
