"""Tests of cputime.runs.promotion: the promotion gate."""

from __future__ import annotations

import math

import pytest

from cputime.runs.promotion import promotion_decision


@pytest.mark.parametrize(
    ("challenger", "champion", "promote", "why"),
    [
        ({"killed_share": 0.02, "mae_dex": 0.3}, None, True, "no champion"),
        ({"killed_share": 0.02, "mae_dex": 0.3}, {"killed_share": 0.05, "mae_dex": 0.1}, True,
         "lower"),
        ({"killed_share": 0.05, "mae_dex": 0.1}, {"killed_share": 0.02, "mae_dex": 0.3}, False,
         "higher"),
        ({"killed_share": 0.02, "mae_dex": 0.1}, {"killed_share": 0.02, "mae_dex": 0.1}, True,
         "<="),
        ({"killed_share": 0.02, "mae_dex": 0.2}, {"killed_share": 0.02, "mae_dex": 0.1}, False,
         ">"),
        ({"killed_share": 0.0, "mae_dex": 0.2}, {"killed_share": 0.0, "mae_dex": math.nan}, True,
         "<="),
    ],
)
def test_promotion_gate(challenger, champion, promote, why):
    decision = promotion_decision(challenger, champion)
    assert decision.promote is promote
    assert why in decision.reason


def test_first_champion_must_pass_the_floor():
    assert promotion_decision({"killed_share": 0.04, "mae_dex": 0.1}, None).promote
    refused = promotion_decision({"killed_share": 0.86, "mae_dex": 0.4}, None)
    assert not refused.promote and "floor" in refused.reason
