"""Statistics with fixed definitions (DESIGN.md "Definitions").

- ``win_rate_lcb``: exact one-sided lower bound of the Beta posterior,
  ``BetaInv(1 - conf; alpha + prior_alpha, beta + prior_beta)`` (scipy ``beta.ppf``).
- ``win_rate_point``: the mean of that posterior,
  ``(alpha + prior_alpha) / (alpha + prior_alpha + beta + prior_beta)``.
- ``percentile``: linear interpolation, Hyndman–Fan type 7 (numpy default).
- ``ev``: pips per trade = total_pips / trades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

PERCENTILE_METHOD = "linear (Hyndman-Fan type 7)"


def win_rate_lcb(alpha: float, beta: float, prior_alpha: float = 0.0, prior_beta: float = 0.0,
                 conf: float = 0.95) -> float:
    """Lower confidence bound (fraction in [0, 1]) of the win rate.

    ``alpha``/``beta`` are the EV gate's (pseudo-)counts of wins/losses from a state file's
    ``ev_global``; ``conf`` is the one-sided confidence (0 < conf < 1). Raises ValueError
    for non-positive shape parameters or a conf outside (0, 1).
    Reference: alpha=26.73646, beta=23.26354, conf=0.95 -> 0.41890.
    """
    a = float(alpha) + float(prior_alpha or 0.0)
    b = float(beta) + float(prior_beta or 0.0)
    if not (a > 0 and b > 0) or not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"Beta shape parameters must be finite and > 0 (got alpha={a}, beta={b})")
    if not (0.0 < float(conf) < 1.0):
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    x = beta_ppf(1.0 - float(conf), a, b)
    if x is None:  # no convergence (extreme shapes): scipy, imported only then (~0.3 s)
        from scipy.special import betaincinv

        x = float(betaincinv(a, b, 1.0 - float(conf)))
    return x


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (Beta(a, b) CDF at ``x``)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(p: float, a: float, b: float) -> float | None:
    """The ``p`` quantile of Beta(a, b): Newton steps on ``beta_cdf`` kept inside a
    shrinking bisection bracket (relative accuracy ~1e-13, what scipy's ``betaincinv``
    gives); None if it does not converge in 200 steps. Pure Python: no scipy import."""
    lo, hi, x = 0.0, 1.0, a / (a + b)
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    for _ in range(200):
        f = beta_cdf(x, a, b) - p
        if f == 0.0:
            return x
        if f > 0:
            hi = x
        else:
            lo = x
        pdf = math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_beta)
        nxt = x - f / pdf if pdf > 0 and math.isfinite(pdf) else (lo + hi) / 2
        if not lo < nxt < hi:
            nxt = (lo + hi) / 2
        if abs(nxt - x) <= 1e-15 * max(x, 1e-300) or hi - lo <= 1e-15 * max(lo, 1e-300):
            return nxt
        x = nxt
    return None


def win_rate_point(alpha: float, beta: float, prior_alpha: float = 0.0, prior_beta: float = 0.0) -> float | None:
    """Mean of the win rate's Beta posterior (fraction): ``(alpha + prior_alpha) / (alpha +
    prior_alpha + beta + prior_beta)``, the point estimate ``win_rate_lcb`` bounds from
    below. None when the shapes do not sum to a positive number."""
    a = float(alpha) + float(prior_alpha or 0.0)
    total = a + float(beta) + float(prior_beta or 0.0)
    return a / total if total > 0 else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (q in [0, 100]) by linear interpolation; None for no values."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q, method="linear"))


def ev_per_trade(total_pips: float | None, trades: float | None) -> float | None:
    """EV in pips per trade = total_pips / trades; None when trades is 0 or missing."""
    if total_pips is None or not trades:
        return None
    return float(total_pips) / float(trades)
