"""The promotion gate: may a retrained challenger replace the champion?

:func:`cputime.runs.retrain.retrain` evaluates both on the same held-out runs and moves the
champion alias (:func:`cputime.runs.registry.set_champion`) only when :func:`promotion_decision`
says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Decision", "promotion_decision"]


@dataclass(frozen=True)
class Decision:
    """Outcome of the promotion gate."""

    promote: bool
    reason: str


def promotion_decision(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    max_killed_share_alone: float = 0.10,
) -> Decision:
    """The promotion gate: is the challenger no worse than the champion?

    Compared on the same held-out runs, in order: ``killed_share`` (share of jobs a walltime at
    the upper bound would kill; lower is better), then, when equal, ``mae_dex`` (mean absolute
    log10 error of the median on finished jobs). A lower killed share promotes whatever the MAE;
    a higher one never does.

    Parameters
    ----------
    challenger, champion : mapping
        Metrics with keys ``killed_share`` and ``mae_dex``; ``champion`` None when there is no
        champion yet (or it could not be evaluated).
    max_killed_share_alone : float
        Without a champion to compare with, the challenger is promoted only if it would kill at
        most this share of the held-out jobs (twice the 5 % a 0.95 bound promises), so that a
        first retrain on a few unrepresentative runs cannot become the champion.

    Returns
    -------
    Decision
    """
    if champion is None:
        killed = challenger["killed_share"]
        promote = killed <= max_killed_share_alone
        return Decision(
            promote,
            f"no champion to compare with; killed share {killed:.4f} "
            f"{'<=' if promote else '>'} the floor {max_killed_share_alone:.2f}",
        )
    killed_new, killed_old = challenger["killed_share"], champion["killed_share"]
    if not math.isclose(killed_new, killed_old, rel_tol=0.0, abs_tol=1e-12):
        better = killed_new < killed_old
        return Decision(
            better,
            f"killed share {killed_new:.4f} vs champion's {killed_old:.4f}: "
            f"{'lower' if better else 'higher'}",
        )
    mae_new, mae_old = challenger["mae_dex"], champion["mae_dex"]
    if math.isnan(mae_old) or mae_new <= mae_old:
        return Decision(
            True, f"same killed share {killed_new:.4f}; MAE {mae_new:.4f} dex <= champion's "
            f"{mae_old:.4f} dex",
        )
    return Decision(
        False,
        f"same killed share {killed_new:.4f}; MAE {mae_new:.4f} dex > champion's {mae_old:.4f} dex",
    )
