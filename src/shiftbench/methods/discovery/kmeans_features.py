"""k-means on the source model's features: the class-discovery baseline of the latent-label-shift setting.

K clusters (K = the model's classes; 100 iterations, best of 5 starts, seeded, as DDFA's own
k-means) on the features (the head's input) of a whole segment at once; the logits are the
one-hot cluster ids, in an arbitrary order, so the matched accuracy is its score. It ignores
the domains: what DDFA adds over it is the use of the domains' differing label marginals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..base import Method
from ..registry import register_method
from .ddfa import kmeans, segment_features


@register_method("kmeans_features")
class KMeansFeatures(Method):
    """k-means with K clusters on the source model's features of the whole segment (a class-discovery baseline)."""

    whole_segment = True

    def __init__(self):
        pass

    @torch.no_grad()
    def predict(self, x):
        features, logits = segment_features(self.model, x, self.source.batch_size)
        k = logits.shape[1]
        return F.one_hot(kmeans(features, k, self.source.seed), k).float().to(x.device)
