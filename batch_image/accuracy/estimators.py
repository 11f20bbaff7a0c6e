"""Stratified estimators of accuracy and area (Olofsson et al. 2014, RSE 148:42–57).

The strata are the map classes: stratum ``i`` holds the map's pixels of class ``i``,
with weight ``W_i`` (its share of the mapped area) and ``n_i`` sample points, of which
``n_ij`` were labelled as reference class ``j``. Everything below follows the paper's
equations (numbers in brackets):

* estimated area proportions ``p_ij = W_i n_ij / n_i`` [eq. 4];
* overall accuracy ``O = Σ_j p_jj`` [eq. 1], ``V(O) = Σ_i W_i² U_i (1-U_i) / (n_i-1)`` [eq. 5];
* user's accuracy ``U_i = p_ii / p_i.`` [eq. 2], ``V(U_i) = U_i (1-U_i) / (n_i-1)`` [eq. 6];
* producer's accuracy ``P_j = p_jj / p_.j`` [eq. 3] with the variance of eq. 7, where
  ``N̂_.j = Σ_i N_i n_ij / n_i`` is the estimated reference population of class ``j``;
* area proportion ``p̂_.k = Σ_i W_i n_ik / n_i`` [eq. 9] with
  ``S(p̂_.k) = sqrt(Σ_i W_i² (n_ik/n_i)(1 - n_ik/n_i) / (n_i-1))`` [eq. 10], area
  ``Â_k = A p̂_.k`` [eq. 11] and its 95 % interval ``Â_k ± 1.96 A S(p̂_.k)`` [eq. 12].

A stratum needs two labelled points (the variances divide by ``n_i - 1``), unless it
was enumerated completely (``census``: every pixel of a tiny class sampled), which adds
no sampling variance; the caller refuses fewer (:mod:`batch_image.accuracy.assessment`).
Pure numpy, no I/O: the test replays the paper's worked example (its Tables 8 and 9 and p. 54).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The multiplier of the 95 % intervals: the paper's 1.96 (its printed intervals use it;
#: the exact normal quantile 1.95996 moves its stable non-forest area by a hectare).
Z95 = 1.96


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error; ``half_width`` is the 95 % interval's half-width."""

    value: float
    se: float

    @property
    def half_width(self) -> float:
        return Z95 * self.se

    @property
    def interval(self) -> tuple[float, float]:
        return self.value - self.half_width, self.value + self.half_width


@dataclass(frozen=True)
class Estimates:
    """Everything eq. 1–12 give for one map and one labelled sample."""

    counts: np.ndarray  # n_ij, rows map class, columns reference class
    proportions: np.ndarray  # p_ij [eq. 4]
    overall: Estimate
    users: tuple[Estimate, ...]
    producers: tuple[Estimate, ...]
    area_proportions: tuple[Estimate, ...]
    areas: tuple[Estimate, ...]  # in the unit of ``mapped_areas``
    mapped_areas: np.ndarray  # pixel-counting areas A_i = A W_i


def stratified_estimates(
    counts: np.ndarray, mapped_areas: np.ndarray, census: np.ndarray | None = None
) -> Estimates:
    """Olofsson's estimators for ``counts`` (q × q, map rows, reference columns) and the
    mapped area of each class (any unit: pixels, m², ha; the areas come out in it);
    ``census[i]``: stratum ``i`` was sampled completely (no sampling variance)."""
    n_ij = np.asarray(counts, dtype=float)
    area = np.asarray(mapped_areas, dtype=float)
    q = n_ij.shape[0]
    if n_ij.shape != (q, q) or area.shape != (q,):
        raise ValueError(f"counts must be {q}x{q} and mapped_areas {q} long")
    n_i = n_ij.sum(axis=1)
    mapped = area > 0  # a class only found in the reference is a column, not a stratum
    full = np.zeros(q, bool) if census is None else np.asarray(census, bool) & (n_i > 0)
    if np.any(n_i[mapped & ~full] < 2) or np.any(n_i[~mapped] > 0):
        raise ValueError("every mapped stratum needs at least two sample points")
    total = area.sum()
    w = area / total
    n_i = np.where(mapped, n_i, 2.0)  # unmapped rows: all-zero counts, weight 0
    # 1 / (n_i - 1) of the variances; 0 for a census and for unmapped rows
    f = np.divide(1.0, n_i - 1, out=np.zeros(q), where=mapped & ~full & (n_i > 1))
    share = n_ij / n_i[:, None]  # n_ij / n_i
    p = w[:, None] * share
    diag = np.diag(p)
    row, col = p.sum(axis=1), p.sum(axis=0)
    users = _ratio(diag, row)  # NaN for unmapped rows
    producers = _ratio(diag, col)
    u0 = np.nan_to_num(users)
    overall = Estimate(float(diag.sum()), float(np.sqrt(np.sum(w**2 * u0 * (1 - u0) * f))))
    var_users = users * (1 - users) * f
    var_share = share * (1 - share) * f[:, None]  # per stratum, per reference class
    area_se = np.sqrt(np.sum((w**2)[:, None] * var_share, axis=0))
    return Estimates(
        counts=n_ij.astype(np.int64),
        proportions=p,
        overall=overall,
        users=tuple(
            Estimate(float(u), float(np.sqrt(v))) for u, v in zip(users, var_users, strict=True)
        ),
        producers=tuple(
            Estimate(float(producers[j]), _producer_se(j, n_ij, n_i, f, area, users, producers))
            for j in range(q)
        ),
        area_proportions=tuple(
            Estimate(float(c), float(s)) for c, s in zip(col, area_se, strict=True)
        ),
        areas=tuple(
            Estimate(float(total * c), float(total * s)) for c, s in zip(col, area_se, strict=True)
        ),
        mapped_areas=area,
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where the denominator is 0 (a class nobody mapped or found)."""
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def _producer_se(
    j: int,
    n_ij: np.ndarray,
    n_i: np.ndarray,
    f: np.ndarray,
    mapped: np.ndarray,
    users: np.ndarray,
    producers: np.ndarray,
) -> float:
    """Standard error of producer's accuracy ``P_j`` [eq. 7]."""
    n_dot_j = float(np.sum(mapped * n_ij[:, j] / n_i))
    if n_dot_j == 0 or np.isnan(producers[j]):
        return float("nan")
    pj, uj = producers[j], users[j]
    own = mapped[j] ** 2 * (1 - pj) ** 2 * np.nan_to_num(uj * (1 - uj)) * f[j]
    others = [
        mapped[i] ** 2 * (n_ij[i, j] / n_i[i]) * (1 - n_ij[i, j] / n_i[i]) * f[i]
        for i in range(len(n_i))
        if i != j and mapped[i] > 0
    ]
    return float(np.sqrt((own + pj**2 * sum(others)) / n_dot_j**2))
