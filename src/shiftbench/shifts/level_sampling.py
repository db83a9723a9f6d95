"""Per-value random corruptions of 8-bit images, sampled straight from their output distributions.

When a corruption changes each value independently and its 8-bit output depends only on the
8-bit input and the noise, it is fully described by a (256, 256) table P[i, j] = probability
that input level i comes out as level j. Sampling from P with Walker's alias method takes one
31-bit random integer, one table look-up and a comparison per value, whatever the noise: much
cheaper than drawing, say, a Poisson variate and rounding it, and the output has the same
distribution up to the 23-bit resolution of the acceptance thresholds.
"""

from __future__ import annotations

import numpy as np
import torch

from .image_ops import random_words

LEVELS = 256
_FRACTION_BITS = 23  # each draw: 8 bits pick the column, 23 more accept it or take its alias
_FRACTION_MASK = ((1 << _FRACTION_BITS) - 1) << 8


def alias_table(probs: torch.Tensor) -> torch.Tensor:
    """Walker / Vose alias tables for the rows of probs (256, 256), packed into one int32 per
    (row, column): acceptance threshold in the high 23 bits, alias column in the low 8."""
    p = probs.double().numpy()
    p = p / p.sum(1, keepdims=True)
    threshold = np.zeros(p.shape, dtype=np.int64)
    alias = np.tile(np.arange(LEVELS), (LEVELS, 1))
    scale = 1 << _FRACTION_BITS
    for row, q in enumerate(p * LEVELS):
        small = [j for j in range(LEVELS) if q[j] < 1]
        large = [j for j in range(LEVELS) if q[j] >= 1]
        while small and large:
            s, big = small.pop(), large.pop()
            threshold[row, s] = round(q[s] * scale)
            alias[row, s] = big
            q[big] -= 1 - q[s]
            (small if q[big] < 1 else large).append(big)
        for j in small + large:  # what is left has probability 1 (up to rounding)
            threshold[row, j] = scale
    # a threshold of 2^23 (always accept) would overflow the packing; 2^23 - 1 rejects with
    # probability 2^-23 and then picks the alias, which is the column itself
    threshold = np.minimum(threshold, scale - 1)
    return torch.from_numpy((threshold << 8 | alias).astype(np.int32).ravel())


def sample_levels(images: torch.Tensor, table: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each 8-bit value i replaced by a draw from row i of the table's distribution."""
    draws = random_words(images.shape, g, images.device)  # bits 0-7 column, bits 8-30 acceptance
    column = draws & 0xFF
    index = images.to(torch.int32).bitwise_left_shift_(8).bitwise_or_(column)
    entry = table.to(images.device).index_select(0, index.view(-1)).view(images.shape)
    accept = draws.bitwise_and_(_FRACTION_MASK) < (entry & _FRACTION_MASK)
    alias = entry.bitwise_and_(0xFF)
    # alias, or the column where accepted, without torch.where (it branches per value)
    return column.bitwise_xor_(alias).mul_(accept).bitwise_xor_(alias).to(torch.uint8)
