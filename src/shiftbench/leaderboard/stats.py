"""Mean, spread and rank over seeds: what every table cell and every rank on a board is made of.

A value is the mean over seeds with its sample standard deviation (ddof 1) and the number of
seeds n. Rows are ranked by mean; a row is *tied* with the row ranked just above it when the
difference of their means is within the spread, |m_a - m_b| <= s_a + s_b (the two mean ± std
intervals overlap), and then shares its rank. A single seed has no spread: two one-seed rows
are tied only when their means are equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float  # nan when n < 2
    n: int

    @staticmethod
    def of(values: Iterable[float]) -> Stat:
        xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if not xs:
            return Stat(math.nan, math.nan, 0)
        mean = math.fsum(xs) / len(xs)
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan
        return Stat(mean, std, len(xs))

    @property
    def missing(self) -> bool:
        return self.n == 0 or math.isnan(self.mean)

    @property
    def spread(self) -> float:
        return 0.0 if math.isnan(self.std) else self.std


def within_spread(a: Stat, b: Stat) -> bool:
    """True when the two means differ by no more than the sum of the two standard deviations."""
    if a.missing or b.missing:
        return False
    return abs(a.mean - b.mean) <= a.spread + b.spread


@dataclass(frozen=True)
class Place:
    rank: int
    tied: bool  # shares its rank with the row above (difference within the spread)


def rank_with_ties(stats: Sequence[Stat], lower_is_better: bool) -> list[Place | None]:
    """Places in the order of `stats`; None for rows without a value. Ties share the rank of the row above."""
    order = sorted((i for i, s in enumerate(stats) if not s.missing),
                   key=lambda i: stats[i].mean if lower_is_better else -stats[i].mean)
    places: list[Place | None] = [None] * len(stats)
    previous = None
    for position, i in enumerate(order, start=1):
        if previous is not None and within_spread(stats[previous], stats[i]):
            places[i] = Place(places[previous].rank, True)
        else:
            places[i] = Place(position, False)
        previous = i
    return places
