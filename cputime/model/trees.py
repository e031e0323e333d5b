"""A booster's trees as numpy arrays: margins of a few rows without XGBoost's per-call cost.

``Booster.inplace_predict`` costs ~0.3-0.4 ms of CPU whatever the number of rows (building the
array interface, a proxy matrix for the base margin, the predictor's set-up), most of the CPU a
one-visit prediction needs. Walking the trees in numpy, all trees at once and one tree level
per step, costs ~0.05 ms for one row and gives XGBoost's numbers exactly: features and split
values compared in float32 (``x < split``, a missing value takes the node's default branch),
the leaves added to the base margin in float32, tree after tree, as XGBoost's CPU predictor adds
them. Only plain boosters are read (numerical splits, one output, gbtree); for anything else
:func:`tree_arrays` returns None and the caller keeps XGBoost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

__all__ = ["TreeArrays", "tree_arrays"]


@dataclass(frozen=True)
class TreeArrays:
    """The nodes of every tree in flat arrays: tree ``k``'s node ``j`` at ``k * width + j``.

    Attributes
    ----------
    feature : numpy.ndarray of int, shape (trees * width,)
        Feature index of each split (0 at leaves and padding).
    split : numpy.ndarray of float32, shape (trees * width,)
        Split value of each split node; the leaf value at a leaf.
    left, right, missing : numpy.ndarray of int, shape (trees * width,)
        Flat index of the child taken by ``x < split``, by ``x >= split`` and by a missing
        (NaN) value; a leaf points to itself, so that walking on from it stays there.
    roots : numpy.ndarray of int, shape (trees,)
        Flat index of each tree's root.
    depth : int
        Splits on the longest path from a root to a leaf.
    """

    feature: np.ndarray
    split: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing: np.ndarray
    roots: np.ndarray
    depth: int

    def margin(self, data: np.ndarray, base_margin: np.ndarray) -> np.ndarray:
        """``base_margin`` plus the leaves reached by each row of ``data`` (n, features),
        summed in float32 in tree order, as float64 [the booster's margin units]."""
        x = np.asarray(data, dtype=np.float32)
        n, width = x.shape
        values = x.ravel()
        offset = (np.arange(n) * width)[:, None]
        node = np.broadcast_to(self.roots, (n, self.roots.size))
        gaps = bool(np.isnan(values).any())
        for _ in range(self.depth):
            value = values[offset + self.feature[node]]
            after = np.where(value < self.split[node], self.left[node], self.right[node])
            node = np.where(np.isnan(value), self.missing[node], after) if gaps else after
        terms = np.empty((n, self.roots.size + 1), dtype=np.float32)
        terms[:, 0] = base_margin
        terms[:, 1:] = self.split[node]
        return np.cumsum(terms, axis=1, dtype=np.float32)[:, -1].astype(float)


def tree_arrays(booster) -> TreeArrays | None:
    """The trees of an ``xgboost.Booster`` as :class:`TreeArrays`, or None for a booster this
    module does not read (categorical splits, several outputs or groups, dart, linear)."""
    model = json.loads(booster.save_raw(raw_format="json"))["learner"]
    gbm = model["gradient_booster"]
    if gbm.get("name") != "gbtree":
        return None
    trees = gbm["model"]["trees"]
    if not trees or any(info != 0 for info in gbm["model"]["tree_info"]):
        return None
    if int(model["learner_model_param"].get("num_target", "1")) != 1:
        return None
    if any(any(t.get("split_type", [])) or t.get("categories") for t in trees):
        return None
    width = max(len(t["left_children"]) for t in trees)
    size = len(trees) * width
    feature = np.zeros(size, dtype=np.intp)
    split = np.zeros(size, dtype=np.float32)
    left, right, missing = (np.arange(size) for _ in range(3))
    depth = 0
    for k, t in enumerate(trees):
        nodes = slice(k * width, k * width + len(t["left_children"]))
        to_left, to_right = np.array(t["left_children"]), np.array(t["right_children"])
        inner = to_left >= 0
        feature[nodes] = np.where(inner, t["split_indices"], 0)
        split[nodes] = np.array(t["split_conditions"], dtype=np.float64).astype(np.float32)
        left[nodes] = np.where(inner, to_left + k * width, left[nodes])
        right[nodes] = np.where(inner, to_right + k * width, right[nodes])
        missing[nodes] = np.where(np.array(t["default_left"], dtype=bool), left[nodes],
                                  right[nodes])  # fmt: skip
        depth = max(depth, _depth(to_left, to_right))
    return TreeArrays(feature, split, left, right, missing, np.arange(len(trees)) * width, depth)


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Splits on the longest root-to-leaf path of one tree."""
    level, nodes = 0, np.array([0])
    while True:
        inner = nodes[left[nodes] >= 0]
        if not inner.size:
            return level
        nodes = np.concatenate([left[inner], right[inner]])
        level += 1
