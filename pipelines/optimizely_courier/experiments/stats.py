"""The statistics `courier results` reports, from each variation's sufficient statistics (units,
mean, sample variance of the per-unit observations).

Fixed-horizon tests: Welch's unequal-variance test on the difference of means (for a 0/1 metric this
is the unpooled two-proportion z-test), with a normal reference (units run in the thousands); the
relative lift's interval by the delta method. Always-valid (sequential) p-values and intervals from
a normal-mixture sequential probability ratio test (mSPRT, the family of Optimizely's Stats Engine),
so results may be looked at every day. Benjamini-Hochberg q-values across an experiment's metrics
and variations. A sample ratio mismatch check: a chi-square test of units per variation against the
planned split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

NORMAL = NormalDist()
SRM_ALPHA = 0.001  # a ratio this unlikely under the planned split means the assignment is broken


@dataclass(frozen=True)
class Arm:
    units: int
    mean: float
    variance: float  # sample variance of the observations


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
    difference: float
    lift: float | None  # relative to the baseline mean; None when the baseline mean is 0
    lift_low: float | None
    lift_high: float | None
    p_value: float
    always_valid_p: float  # valid however often the results were looked at
    always_valid_low: float | None  # the relative lift's always-valid interval
    always_valid_high: float | None


def compare(treatment: Arm, baseline: Arm, confidence: float = 0.95) -> Comparison:
    """Welch's test of treatment against baseline, and the relative lift with its interval."""
    difference = treatment.mean - baseline.mean
    variance = treatment.variance / treatment.units + baseline.variance / baseline.units
    se = math.sqrt(variance)
    p_value = 1.0 if se == 0 else 2 * NORMAL.cdf(-abs(difference) / se)
    if se == 0 and difference != 0:
        p_value = 0.0
    sequential_p, half_width = always_valid(difference, variance, mixing_sd(baseline), 1 - confidence)
    if baseline.mean == 0:
        return Comparison(difference, None, None, None, p_value, sequential_p, None, None)
    lift = difference / baseline.mean
    # delta method for treatment.mean / baseline.mean - 1
    ratio = treatment.mean / baseline.mean
    lift_se = math.sqrt(treatment.variance / treatment.units / baseline.mean ** 2
                        + ratio ** 2 * baseline.variance / baseline.units / baseline.mean ** 2)
    z = NORMAL.inv_cdf(0.5 + confidence / 2)
    scale = abs(baseline.mean)
    return Comparison(difference, lift, lift - z * lift_se, lift + z * lift_se, p_value, sequential_p,
                      lift - half_width / scale, lift + half_width / scale)


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


def mixing_sd(baseline: Arm) -> float:
    """The mSPRT's prior scale of effects: a tenth of the baseline mean (a 10% relative effect), or
    of its standard deviation when the mean is 0."""
    return 0.1 * (abs(baseline.mean) or math.sqrt(baseline.variance)) or 1.0


def always_valid(difference: float, variance: float, tau: float, alpha: float) -> tuple[float, float]:
    """The mSPRT's always-valid p-value for "no difference" at this look, and its (1 - alpha) interval's
    half-width on the difference (Johari, Pekelis, Walsh 2015; normal mixture N(0, tau^2)):
    likelihood ratio sqrt(V / (V + tau^2)) * exp(d^2 tau^2 / (2 V (V + tau^2))), p = min(1, 1 / ratio)."""
    if variance == 0:
        return (1.0 if difference == 0 else 0.0), 0.0
    mixed = variance + tau ** 2
    log_ratio = 0.5 * math.log(variance / mixed) + difference ** 2 * tau ** 2 / (2 * variance * mixed)
    p_value = min(1.0, math.exp(-log_ratio))
    half_width = math.sqrt(variance * mixed / tau ** 2 * (math.log(mixed / variance) - 2 * math.log(alpha)))
    return p_value, half_width


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
