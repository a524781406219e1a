"""Seasonal forecast and node arithmetic, pure numpy (no Django).

Additive Holt-Winters with a damped trend: level, trend and one seasonal term per
step of the period (a day). The smoothing weights are chosen by grid search on
one-step-ahead squared error, all grid points run side by side as numpy vectors,
so a fit over 14 days of 5-minute steps (4,032 points, 90 weight combinations)
takes about 0.1 s.

The model is online: ``HoltWinters.update`` takes one new observation, so a replay
(``scaling.evaluation``) and the live forecast share one code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product

import numpy as np

ALPHAS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7)
BETAS = (0.0, 0.01, 0.05)
GAMMAS = (0.05, 0.1, 0.2, 0.35, 0.5)
PHI = 0.9  # trend damping: a morning ramp must not be extrapolated for an hour


class NotEnoughHistory(ValueError):
    """Fewer than two full periods: no seasonal model can be initialised."""


@dataclass
class HoltWinters:
    period: int
    alpha: float
    beta: float
    gamma: float
    phi: float = PHI
    level: float = 0.0
    trend: float = 0.0
    season: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t: int = 0  # observations consumed; the next one has season index t % period

    @classmethod
    def fit(cls, y: np.ndarray, *, period: int) -> HoltWinters:
        """Choose the weights on ``y`` and return the model after its last point."""
        y = np.asarray(y, dtype=float)
        if period < 2 or len(y) < 2 * period:
            raise NotEnoughHistory(
                f"need at least 2 periods ({2 * period} steps) of history, have {len(y)}"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError("history contains NaN or infinite values")
        grid = np.array(list(product(ALPHAS, BETAS, GAMMAS)), dtype=float)
        a, b, g = grid[:, 0:1], grid[:, 1:2], grid[:, 2:3]
        level0, trend0, season0 = _initial_state(y, period)
        n_grid = len(grid)
        lv = np.full((n_grid, 1), level0)
        tr = np.full((n_grid, 1), trend0)
        se = np.tile(season0, (n_grid, 1))
        sse = np.zeros((n_grid, 1))
        phi = PHI
        for t, obs in enumerate(y):
            i = t % period
            s_i = se[:, i : i + 1]
            pred = lv + phi * tr + s_i
            # The first period initialised the state: scoring it would reward overfit.
            if t >= period:
                sse += (obs - pred) ** 2
            new_lv = a * (obs - s_i) + (1 - a) * (lv + phi * tr)
            tr = b * (new_lv - lv) + (1 - b) * phi * tr
            se[:, i : i + 1] = g * (obs - new_lv) + (1 - g) * s_i
            lv = new_lv
        best = int(np.argmin(sse[:, 0]))
        return cls(
            period=period,
            alpha=float(grid[best, 0]),
            beta=float(grid[best, 1]),
            gamma=float(grid[best, 2]),
            phi=phi,
            level=float(lv[best, 0]),
            trend=float(tr[best, 0]),
            season=se[best].copy(),
            t=len(y),
        )

    def update(self, obs: float) -> None:
        i = self.t % self.period
        s_i = self.season[i]
        new_level = self.alpha * (obs - s_i) + (1 - self.alpha) * (
            self.level + self.phi * self.trend
        )
        self.trend = self.beta * (new_level - self.level) + (1 - self.beta) * self.phi * self.trend
        self.season[i] = self.gamma * (obs - new_level) + (1 - self.gamma) * s_i
        self.level = new_level
        self.t += 1

    def forecast(self, steps: int) -> np.ndarray:
        """The next ``steps`` values; load cannot be negative, so floored at 0."""
        h = np.arange(1, steps + 1)
        damp = np.cumsum(self.phi**h)
        idx = (self.t + h - 1) % self.period
        return np.maximum(0.0, self.level + damp * self.trend + self.season[idx])


def _initial_state(y: np.ndarray, period: int) -> tuple[float, float, np.ndarray]:
    # Seasonal terms from the first two periods, each centred on its own mean, so
    # one noisy day does not become the shape of every day.
    first, second = y[:period], y[period : 2 * period]
    season = ((first - first.mean()) + (second - second.mean())) / 2
    trend = (second.mean() - first.mean()) / period
    return float(first.mean()), float(trend), season


def nodes_needed(
    *, load: float, capacity: float, target_utilisation: float, min_nodes: int, max_nodes: int
) -> int:
    """Nodes that carry ``load`` at no more than the target utilisation each."""
    if capacity <= 0 or not 0 < target_utilisation <= 1:
        raise ValueError("capacity must be > 0 and target utilisation in (0, 1]")
    need = math.ceil(max(load, 0.0) / (capacity * target_utilisation) - 1e-9)
    return max(min_nodes, min(max_nodes, need))


def resample(values: np.ndarray, *, step: int) -> np.ndarray:
    """Means of consecutive blocks of ``step`` values (a trailing partial block dropped)."""
    values = np.asarray(values, dtype=float)
    full = len(values) // step * step
    return values[:full].reshape(-1, step).mean(axis=1)
