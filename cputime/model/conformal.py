"""Finite-sample conformal upper quantiles, with and without right-censored scores.

Two pure functions turn calibration conformity scores into the offset that makes an upper
prediction bound valid at a chosen confidence level:

* :func:`conformal_upper_quantile` -- the classical split-conformal quantile, level
  ``ceil((n + 1) c) / n`` with ``method="lower"`` (as MAPIE's ``_compute_regression_quantile``);
* :func:`km_conformal_upper_quantile` -- the same when some scores are only known from below
  (right-censored), using a Kaplan--Meier estimate of the score distribution.

Scores here are "actual minus predicted" on a log scale, so an upper bound is
``prediction + quantile``.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

__all__ = [
    "check_confidence_level",
    "conformal_upper_quantile",
    "kaplan_meier_cdf",
    "km_conformal_upper_quantile",
    "min_calibration_size",
]


def check_confidence_level(confidence_level: float) -> float:
    """Return ``confidence_level`` as a float after checking that it lies in (0, 1).

    Raises
    ------
    ValueError
        If the level is not a number strictly between 0 and 1.
    """
    try:
        level = float(confidence_level)
    except (TypeError, ValueError):
        raise ValueError(
            f"confidence_level must be a number in (0, 1), got {confidence_level!r}"
        ) from None
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    return level


def _rank_needed(n: int, confidence_level: float) -> int:
    """``ceil((n + 1) c)``, computed in Decimal so that 0.95 * 20 is exactly 19."""
    product = (Decimal(n) + 1) * Decimal(str(confidence_level))
    return int(product.to_integral_value(rounding="ROUND_CEILING"))


def min_calibration_size(confidence_level: float) -> int:
    """Smallest number of calibration scores for which the upper quantile is finite.

    Parameters
    ----------
    confidence_level : float
        Target coverage in (0, 1).

    Returns
    -------
    int
        Smallest ``n`` with ``ceil((n + 1) c) <= n`` (19 for c = 0.95, 99 for c = 0.99).
    """
    level = check_confidence_level(confidence_level)
    n = max(1, math.floor(level / (1.0 - level)) - 1)
    while _rank_needed(n, level) > n:
        n += 1
    return n


def conformal_upper_quantile(scores: np.ndarray, confidence_level: float) -> float:
    """Split-conformal upper quantile of conformity scores.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Calibration conformity scores (here: log of actual / predicted CPU time). NaNs are
        ignored.
    confidence_level : float
        Target coverage ``c`` in (0, 1).

    Returns
    -------
    float
        The ``ceil((n + 1) c)``-th smallest score. If the calibration rows and a new row are
        exchangeable, ``P(new score <= quantile) >= c``.

    Raises
    ------
    ValueError
        If every score is NaN, or if ``n`` is too small for the level
        (``ceil((n + 1) c) > n``; see :func:`min_calibration_size`).

    Notes
    -----
    ``np.quantile(scores, ceil((n + 1) c) / n, method="lower")`` is the same number; the rank is
    taken directly to avoid floating-point noise in the level.

    References
    ----------
    .. [1] Vovk, Gammerman & Shafer (2005), *Algorithmic Learning in a Random World*, Springer.
    .. [2] Lei, G'Sell, Rinaldo, Tibshirani & Wasserman (2018), "Distribution-free predictive
       inference for regression", JASA 113, 1094. doi:10.1080/01621459.2017.1307116
    """
    level = check_confidence_level(confidence_level)
    values = np.asarray(scores, dtype=float).ravel()
    values = values[~np.isnan(values)]
    n = values.size
    if n == 0:
        raise ValueError("no calibration scores (all are NaN or the array is empty)")
    rank = _rank_needed(n, level)
    if rank > n:
        raise ValueError(
            f"{n} calibration scores are too few for confidence_level={level}: "
            f"at least {min_calibration_size(level)} are needed"
        )
    return float(np.sort(values)[rank - 1])


def kaplan_meier_cdf(
    scores: np.ndarray, censored: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan--Meier estimate of the distribution function of right-censored scores.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Observed scores; for a censored row the true score is at least this value.
    censored : array-like of bool, shape (n,)
        True where the score is a lower bound only.

    Returns
    -------
    event_scores : ndarray
        Distinct uncensored scores, increasing.
    cdf : ndarray
        Estimated ``P(score <= event_scores[k])``, non-decreasing. It ends below 1 when the
        largest scores are censored.

    Notes
    -----
    Ties between an event and a censored score are broken as usual: the censored row is still
    at risk at that score.
    """
    values = np.asarray(scores, dtype=float).ravel()
    cens = np.asarray(censored, dtype=bool).ravel()
    if values.shape != cens.shape:
        raise ValueError(f"scores ({values.size}) and censored ({cens.size}) differ in length")
    keep = ~np.isnan(values)
    values, cens = values[keep], cens[keep]
    event_scores = np.unique(values[~cens])
    # at risk at t: rows with score >= t (censored rows tied with t are still at risk)
    at_risk = values.size - np.searchsorted(np.sort(values), event_scores, side="left")
    sorted_events = np.sort(values[~cens])
    events = np.searchsorted(sorted_events, event_scores, side="right") - np.searchsorted(
        sorted_events, event_scores, side="left"
    )
    survival = np.cumprod(1.0 - events / at_risk)
    return event_scores, 1.0 - survival


def km_conformal_upper_quantile(
    scores: np.ndarray, censored: np.ndarray | None, confidence_level: float
) -> float:
    """Conformal upper quantile when some calibration scores are right-censored.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Conformity scores (log of actual / predicted CPU time). For a censored row (job killed
        at the time limit) the true score is only known to be at least this value.
    censored : array-like of bool, shape (n,), or None
        True where the score is a lower bound. None means no censoring.
    confidence_level : float
        Target coverage ``c`` in (0, 1).

    Returns
    -------
    float
        Smallest uncensored score ``t`` with ``F_KM(t) >= c (n + 1) / n``, where ``F_KM`` is the
        Kaplan--Meier distribution function of the scores. ``+inf`` when the Kaplan--Meier
        curve never gets there (too many of the large scores are censored): no finite bound
        can be justified, so the caller gets the conservative answer.

    Raises
    ------
    ValueError
        If there are no usable scores, or ``n`` is too small for the level (as in
        :func:`conformal_upper_quantile`).

    Notes
    -----
    Without censoring ``F_KM`` is the empirical distribution function and the result equals
    :func:`conformal_upper_quantile` exactly: the ``(n + 1) / n`` factor is the same
    finite-sample correction.

    Assumptions. The Kaplan--Meier estimate is consistent when the censoring point of a score
    is independent of the score itself (non-informative censoring). Here a score is censored
    when the job hit the batch CPU limit, so the censoring point is
    ``log(limit) - log(prediction)``: it depends on the features through the prediction, and
    is independent of the score when the log residual is independent of the features (a
    homoscedastic model; use per-group calibration, e.g. moon up/down, to make that more
    nearly true). Unlike the uncensored case, coverage is then asymptotic, not exact in finite
    samples. Candès, Lei & Ren [1]_ obtain exact finite-sample guarantees in the survival
    setting by weighting with the censoring distribution; the Kaplan--Meier quantile is the
    simple plug-in version of that idea for a one-sided upper bound.

    References
    ----------
    .. [1] Candès, Lei & Ren (2023), "Conformalized survival analysis", JRSS-B 85(1), 24-45.
       doi:10.1093/jrsssb/qkac004
    .. [2] Kaplan & Meier (1958), "Nonparametric estimation from incomplete observations",
       JASA 53, 457. doi:10.1080/01621459.1958.10501452
    """
    level = check_confidence_level(confidence_level)
    values = np.asarray(scores, dtype=float).ravel()
    if censored is None:
        return conformal_upper_quantile(values, level)
    cens = np.asarray(censored, dtype=bool).ravel()
    if values.shape != cens.shape:
        raise ValueError(f"scores ({values.size}) and censored ({cens.size}) differ in length")
    keep = ~np.isnan(values)
    n = int(keep.sum())
    if n == 0:
        raise ValueError("no calibration scores (all are NaN or the array is empty)")
    if _rank_needed(n, level) > n:
        raise ValueError(
            f"{n} calibration scores are too few for confidence_level={level}: "
            f"at least {min_calibration_size(level)} are needed"
        )
    event_scores, cdf = kaplan_meier_cdf(values[keep], cens[keep])
    target = level * (n + 1) / n
    # small tolerance: without censoring cdf is k/n computed by a cumulative product
    reached = np.nonzero(cdf >= target - 1e-12)[0]
    if reached.size == 0:
        return math.inf
    return float(event_scores[reached[0]])
