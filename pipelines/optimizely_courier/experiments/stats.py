"""The statistics `courier results` reports, from each variation's sufficient statistics (units,
mean, sample variance of the per-unit observations).

Fixed horizon: Welch's unequal-variance z-test on the difference of means (each variance the sample
variance, n - 1; for a 0/1 metric the same test on the 0/1 values), two-sided, against the normal
distribution, with tail-exact p-values (`erfc`); the relative lift's interval by the delta method.
Always valid (sequential): a normal-mixture sequential probability ratio test (mSPRT, the family of
Optimizely's Stats Engine) over the experiment's looks, so results may be read every day: its p-value
is the running minimum over the looks, its interval the running intersection, and its mixing scale
is fixed once per experiment and metric. Benjamini-Hochberg q-values across an experiment's metrics
and variations. A sample ratio mismatch check: a chi-square test of units per variation against the
planned split. A Bayesian reading (the chance to beat the baseline, the expected loss) and a
guardrail's one-sided harm test, both on the normal approximation of log(1 + lift). The sample size a
plan needs for that fixed-horizon test.

What is not defined is not reported: with fewer than 2 units in an arm, or no variation within either
arm, there is no p-value, interval or q-value (see `undefined`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

NORMAL = NormalDist()
SRM_ALPHA = 0.001  # a ratio this unlikely under the planned split means the assignment is broken
# The mixing scale is taken from the baseline at the first look with this many units (or the last look).
MIXING_UNITS = 100
# Kohavi, Deng, Longbotham, Xu, "Seven rules of thumb for web site experimenters" (KDD 2014), rule 7:
# the normal approximation needs at least 355 * skewness^2 units per variation.
SKEWNESS_RULE = 355


@dataclass(frozen=True)
class Arm:
    units: int
    mean: float
    variance: float | None  # sample variance of the observations; None with fewer than 2 units


@dataclass(frozen=True)
class Moments:
    """A variation's sufficient statistics of a metric and of its CUPED covariate (the metric's value
    over a period before the unit's decision)."""

    units: int
    mean: float
    variance: float
    covariate_mean: float
    covariate_variance: float
    covariance: float  # of the metric and its covariate


@dataclass(frozen=True)
class Comparison:
    """The fixed-horizon comparison of a treatment with the baseline."""

    difference: float
    lift: float | None  # relative to the baseline mean; None when the baseline mean is 0
    lift_low: float | None
    lift_high: float | None
    p_value: float


@dataclass(frozen=True)
class Sequential:
    """The always-valid reading after a series of looks."""

    p_value: float  # the running minimum over the looks
    lift_low: float | None  # the running intersection of the relative lift's intervals
    lift_high: float | None
    looks: int  # looks at which the comparison was defined


def undefined(treatment: Arm, baseline: Arm, names: tuple[str, str] = ("treatment", "baseline")) -> str | None:
    """Why no p-value or interval can be given for this comparison, or None when they can."""
    for arm, name in zip((treatment, baseline), names):
        if arm.units < 2 or arm.variance is None:
            return f"fewer than 2 units in {name}"
    values = (treatment.mean, baseline.mean, treatment.variance, baseline.variance)
    if not all(math.isfinite(v) for v in values):
        return "a value is not a finite number"
    if treatment.variance == 0 and baseline.variance == 0:
        return "no variation within either arm"
    return None


def compare(treatment: Arm, baseline: Arm, confidence: float = 0.95) -> Comparison:
    """Welch's test of treatment against baseline, and the relative lift with its interval. Both arms
    must be defined (`undefined` is None)."""
    difference = treatment.mean - baseline.mean
    se = math.sqrt(treatment.variance / treatment.units + baseline.variance / baseline.units)
    p_value = two_sided_p(difference / se)
    if baseline.mean == 0:
        return Comparison(difference, None, None, None, p_value)
    lift = difference / baseline.mean
    # delta method for treatment.mean / baseline.mean - 1
    ratio = treatment.mean / baseline.mean
    lift_se = math.sqrt(treatment.variance / treatment.units / baseline.mean ** 2
                        + ratio ** 2 * baseline.variance / baseline.units / baseline.mean ** 2)
    z = NORMAL.inv_cdf(0.5 + confidence / 2)
    return Comparison(difference, lift, lift - z * lift_se, lift + z * lift_se, p_value)


def log_ratio(treatment: Arm, baseline: Arm) -> tuple[float, float] | None:
    """The log of the ratio of the means, log(1 + lift), and its standard error by the delta method on
    the log means: se^2 = var_t / (n_t mean_t^2) + var_b / (n_b mean_b^2). None unless both means are
    positive. Unlike the lift's own delta-method error, it treats the two arms alike, so its one-sided
    readings are calibrated (A/A on a 10% rate, 2,000 units per arm: each tail 4.8%, where the lift's
    gives 3.6% above and 6.0% below)."""
    if treatment.mean <= 0 or baseline.mean <= 0:
        return None
    variance = (treatment.variance / treatment.units / treatment.mean ** 2
                + baseline.variance / baseline.units / baseline.mean ** 2)
    return math.log(treatment.mean / baseline.mean), math.sqrt(variance)


@dataclass(frozen=True)
class Bayesian:
    """The posterior reading of a comparison."""

    chance_to_beat_baseline: float  # P(the treatment is better than the baseline)
    expected_loss: float  # E[how much worse the treatment is, relative to the baseline], 0 where it is better


def bayesian(log_lift: float, se: float, better: str = "higher", prior: tuple[float, float] | None = None) -> Bayesian:
    """The chance that the treatment beats the baseline and the expected loss of choosing it. The
    likelihood of L = log(1 + lift) is normal, N(log_lift, se^2) (`log_ratio`); the prior (`prior`: mean
    and sd of the relative lift) is normal on L, N(log(1 + mean), (sd / (1 + mean))^2), and None is
    flat: the posterior is then the likelihood, and the chance is one minus the one-sided p of the
    log-ratio z-test. With L ~ N(m, s^2) after the prior, and higher better:
        chance = Phi(m / s)
        loss = E[max(0, 1 - e^L)] = Phi(-m / s) - e^(m + s^2/2) Phi(-m / s - s)
    (lower better: chance = Phi(-m / s), loss = E[max(0, e^L - 1)] = e^(m + s^2/2) Phi(m / s + s) - Phi(m / s))."""
    mean, variance = log_lift, se ** 2
    if prior is not None and variance > 0:
        prior_mean, prior_sd = math.log1p(prior[0]), prior[1] / (1 + prior[0])
        precision = 1 / variance + 1 / prior_sd ** 2
        mean, variance = (mean / variance + prior_mean / prior_sd ** 2) / precision, 1 / precision
    sd = math.sqrt(variance)
    sign = 1 if better == "higher" else -1
    if sd == 0:  # a degenerate delta method: the ratio is known
        improvement = sign * mean
        return Bayesian(1.0 if improvement > 0 else 0.0 if improvement < 0 else 0.5,
                        max(0.0, -sign * math.expm1(mean)))
    chance = _phi(sign * mean / sd)
    grown = math.exp(mean + variance / 2)
    if sign > 0:
        loss = _phi(-mean / sd) - grown * _phi(-mean / sd - sd)
    else:
        loss = grown * _phi(mean / sd + sd) - _phi(mean / sd)
    return Bayesian(chance, max(loss, 0.0))


def _phi(z: float) -> float:
    """The standard normal distribution function, exact in the tails."""
    return 0.5 * math.erfc(-z / math.sqrt(2))


HARM_ALPHA = 0.05  # a guardrail's one-sided tests


@dataclass(frozen=True)
class Guardrail:
    """A guardrail's reading: the relative harm (how much worse the treatment is than the baseline, in
    the metric's better direction), its one-sided 95% bounds, and the p-value of "worse by more than
    max_harm"."""

    harm: float
    harm_low: float  # the treatment is worse than this by 95% confidence (one-sided)
    harm_high: float  # and no worse than this
    p_value: float  # one-sided: H0 harm <= max_harm against H1 harm > max_harm
    verdict: str  # "harmful" (p < 0.05), "within max harm" (harm_high < max_harm) or "inconclusive"


def guardrail(log_lift: float, se: float, max_harm: float, better: str = "higher") -> Guardrail:
    """The one-sided z-test of a guardrail on L = log(1 + lift) (`log_ratio`): with higher better the harm
    is 1 - e^L and exceeds `max_harm` when L < log(1 - max_harm); with lower better it is e^L - 1 and
    exceeds it when L > log(1 + max_harm). Harmful when that holds at the 5% level; within max harm
    when the one-sided 95% upper bound of the harm is below it (a non-inferiority test at the same
    level); else inconclusive."""
    if better == "higher":
        worse, threshold, harm_of = -log_lift, -math.log1p(-max_harm), lambda w: -math.expm1(-w)
    else:
        worse, threshold, harm_of = log_lift, math.log1p(max_harm), math.expm1
    z = NORMAL.inv_cdf(1 - HARM_ALPHA)
    if se == 0:  # a degenerate delta method: the harm is known
        p_value = 0.0 if worse > threshold else 1.0
    else:
        p_value = 0.5 * math.erfc((worse - threshold) / se / math.sqrt(2))
    low, high = harm_of(worse - z * se), harm_of(worse + z * se)
    verdict = "harmful" if p_value < HARM_ALPHA else "within max harm" if high < max_harm else "inconclusive"
    return Guardrail(harm_of(worse), low, high, p_value, verdict)


def sample_size(mean: float, variance: float, mde: float, weights: Sequence[float], alpha: float = 0.05,
                power: float = 0.8, rate: bool = False) -> float:
    """The units in total for a two-sided test at `alpha` (Welch's z, as `compare`) to detect a relative
    effect `mde` on a metric whose baseline has this mean and variance per unit, with `power`, when a
    share `weights[0]` of the units goes to the baseline and `weights[1]` to the treatment (of all the
    experiment's variations):
        N = (z_{1 - alpha/2} + z_power)^2 (var_b / w_b + var_t / w_t) / (mde * mean)^2.
    The treatment's variance is taken equal to the baseline's; for a rate (`rate`: a 0/1 metric) it is
    the Bernoulli variance of the rate it would have, mean (1 + mde)."""
    effect = mde * mean
    treatment_variance = variance
    if rate:
        changed = mean * (1 + mde)
        treatment_variance = changed * (1 - changed)
    z = NORMAL.inv_cdf(1 - alpha / 2) + NORMAL.inv_cdf(power)
    return z ** 2 * (variance / weights[0] + treatment_variance / weights[1]) / effect ** 2


def two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z, exact in the tails (1 - cdf would round to 0 past |z| ~ 8)."""
    return math.erfc(abs(z) / math.sqrt(2))


def mixing_sd(looks: Sequence[Arm]) -> float:
    """The mSPRT's prior scale of effects, fixed once for an experiment's metric: a tenth of the
    baseline's mean (a 10% relative effect), or of its standard deviation when the mean is 0, at the
    first look with `MIXING_UNITS` units (the last look when none has)."""
    usable = [arm for arm in looks if arm.units >= 2 and arm.variance is not None]
    if not usable:
        return 1.0
    arm = next((a for a in usable if a.units >= MIXING_UNITS), usable[-1])
    return 0.1 * (abs(arm.mean) or math.sqrt(arm.variance)) or 1.0


def sequential(looks: Sequence[tuple[Arm, Arm]], tau: float, confidence: float = 0.95) -> Sequential | None:
    """The always-valid p-value and interval of the relative lift after `looks` (treatment, baseline),
    oldest first: the minimum of the looks' p-values and the intersection of their intervals, so neither
    moves back as data come in. None when no look is defined."""
    p_value, low, high, count = 1.0, -math.inf, math.inf, 0
    for treatment, baseline in looks:
        if undefined(treatment, baseline) is not None:
            continue
        count += 1
        difference = treatment.mean - baseline.mean
        variance = treatment.variance / treatment.units + baseline.variance / baseline.units
        look_p, half_width = always_valid(difference, variance, tau, 1 - confidence)
        p_value = min(p_value, look_p)
        if baseline.mean != 0:
            scale = abs(baseline.mean)
            low, high = max(low, (difference - half_width) / scale), min(high, (difference + half_width) / scale)
    if count == 0:
        return None
    bounded = math.isfinite(low) and math.isfinite(high) and low <= high
    return Sequential(p_value, low if bounded else None, high if bounded else None, count)


def always_valid(difference: float, variance: float, tau: float, alpha: float) -> tuple[float, float]:
    """The mSPRT's always-valid p-value for "no difference" at one look, and its (1 - alpha) interval's
    half-width on the difference (Johari, Pekelis, Walsh 2015; normal mixture N(0, tau^2)):
    likelihood ratio sqrt(V / (V + tau^2)) * exp(d^2 tau^2 / (2 V (V + tau^2))), p = min(1, 1 / ratio)."""
    mixed = variance + tau ** 2
    log_ratio = 0.5 * math.log(variance / mixed) + difference ** 2 * tau ** 2 / (2 * variance * mixed)
    p_value = math.exp(-log_ratio) if log_ratio > 0 else 1.0
    half_width = math.sqrt(variance * mixed / tau ** 2 * (math.log(mixed / variance) - 2 * math.log(alpha)))
    return p_value, half_width


def units_needed(skewness: float | None) -> int | None:
    """The units per variation the normal approximation needs for a metric this skewed (rule 7)."""
    if skewness is None or not math.isfinite(skewness):
        return None
    return math.ceil(SKEWNESS_RULE * skewness ** 2)


def cuped(arms: dict[str, Moments]) -> tuple[dict[str, Arm], float]:
    """CUPED (Deng, Xu, Kohavi, Walker 2013): each variation's mean moved by theta times its covariate
    mean's distance from the overall covariate mean, with the variance of Y - theta X. Theta is the
    pooled within-variation slope of the metric on its covariate (0 when the covariate does not vary),
    so a treatment effect does not leak into it. Returns the adjusted arms and theta."""
    spread = sum((arm.units - 1) * arm.covariate_variance for arm in arms.values())
    theta = sum((arm.units - 1) * arm.covariance for arm in arms.values()) / spread if spread > 0 else 0.0
    overall = sum(arm.units * arm.covariate_mean for arm in arms.values()) / sum(arm.units for arm in arms.values())
    adjusted = {name: Arm(units=arm.units, mean=arm.mean - theta * (arm.covariate_mean - overall),
                          variance=max(arm.variance - 2 * theta * arm.covariance
                                       + theta ** 2 * arm.covariate_variance, 0.0))
                for name, arm in arms.items()}
    return adjusted, theta


def q_values(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (the false discovery rate at which each is significant)."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    running = 1.0
    for rank in range(count, 0, -1):
        index = order[rank - 1]
        running = min(running, p_values[index] * count / rank)
        adjusted[index] = running
    return adjusted


def sample_ratio_p_value(units: list[int], split: list[float] | None = None) -> float:
    """The chi-square test's p-value of `units` per variation against the planned `split` (equal when
    not given)."""
    total = sum(units)
    weights = split or [1.0] * len(units)
    expected = [total * w / sum(weights) for w in weights]
    statistic = sum((o - e) ** 2 / e for o, e in zip(units, expected) if e > 0)
    return chi_square_survival(statistic, len(units) - 1)


def chi_square_survival(statistic: float, degrees: int) -> float:
    """P(X >= statistic) for X chi-square with `degrees` degrees of freedom: the regularized upper
    incomplete gamma function Q(degrees / 2, statistic / 2)."""
    if degrees <= 0:
        return 1.0
    return _upper_gamma(degrees / 2, statistic / 2)


def _upper_gamma(a: float, x: float) -> float:
    """Q(a, x), by its series below a + 1 and its continued fraction above (Numerical Recipes)."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1 - total * math.exp(log_prefix))
    tiny = 1e-300
    b, c, d = x + 1 - a, 1 / tiny, 1 / (x + 1 - a)
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)
