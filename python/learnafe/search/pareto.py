"""Non-dominated (Pareto) sets, all objectives minimised."""

from __future__ import annotations

import numpy as np

from learnafe.search.space import OBJECTIVES


def dominates(a, b) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in at least one."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated(points) -> np.ndarray:
    """Indices (ascending) of the points that no other point dominates.

    ``points`` is ``[N, M]`` (N points, M objectives to minimise).  Exact
    duplicates do not dominate each other, so all copies of a front point stay.
    Rows with a non-finite entry are never on the front.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-D array [N, M], got shape {pts.shape}")
    if pts.shape[0] == 0:
        return np.zeros(0, dtype=int)
    finite = np.all(np.isfinite(pts), axis=1)
    keep = []
    for i in np.flatnonzero(finite):
        others = pts[finite]
        no_worse = np.all(others <= pts[i], axis=1)
        better = np.any(others < pts[i], axis=1)
        if not np.any(no_worse & better):
            keep.append(i)
    return np.asarray(keep, dtype=int)


def objective_matrix(records: list[dict], keys=OBJECTIVES) -> np.ndarray:
    """``[N, len(keys)]`` objectives of journal records (NaN where missing)."""
    rows = []
    for r in records:
        obj = r.get("objectives") or {}
        rows.append([float(obj[k]) if obj.get(k) is not None else np.nan for k in keys])
    return np.asarray(rows, dtype=float).reshape(len(rows), len(keys))


def pareto_records(records: list[dict], keys=OBJECTIVES) -> list[dict]:
    """The successful journal records that are non-dominated in ``keys``, sorted by the first key."""
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return []
    matrix = objective_matrix(ok, keys)
    front = [ok[i] for i in non_dominated(matrix)]
    return sorted(front, key=lambda r: tuple(r["objectives"][k] for k in keys))


def front_2d(x, y):
    """Indices of the 2-D non-dominated points of (x, y), sorted by x (for staircase plots)."""
    idx = non_dominated(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))
    return idx[np.argsort(np.asarray(x, float)[idx], kind="stable")]
