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
    from scipy.special import betaincinv  # lazy: scipy import is slow and only needed here

    a = float(alpha) + float(prior_alpha or 0.0)
    b = float(beta) + float(prior_beta or 0.0)
    if not (a > 0 and b > 0) or not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"Beta shape parameters must be finite and > 0 (got alpha={a}, beta={b})")
    if not (0.0 < float(conf) < 1.0):
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    return float(betaincinv(a, b, 1.0 - float(conf)))


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
