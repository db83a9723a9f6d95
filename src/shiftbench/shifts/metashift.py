"""MetaShift-style context shift (Liang & Zou 2022) for any dataset whose images carry context tags.

A dataset opts in by putting in each split's meta: "tags", a (N, T) bool tensor,
"tag_names", the T tag names, and optionally "tag_universe", {"labels", "tags"}
of the whole dataset (subset distances are computed on it when present).

Subsets: `c(t)` = images of class c tagged t, kept when they hold >= min_size
images (MetaShift uses 25). Distance, as in MetaShift's released code, per class c:
  1. meta-graph over the subsets c(t): edge weight = overlap coefficient
     |A & B| / min(|A|, |B|), edges below 0.2 dropped;
  2. spectral embedding: eigenvectors 2..(dim+1) of the graph Laplacian L = D - W
     (ascending eigenvalues, dim = 5), each coordinate centred, then all scaled so
     the largest |coordinate| is 1 (networkx.spectral_layout);
  3. the distance of a training context set to a test context set is the mean
     Euclidean distance between their subsets' embeddings (MetaShift: training
     dog(A + B) to test dog(shelf) = (|e_A - e_T| + |e_B - e_T|) / 2).
We average that over the classes in which every needed subset exists.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field

from ..core.imageset import ImageSet
from .registry import register_shift

EDGE_THRESHOLD = 0.2
EMBED_DIM = 5


def meta_graph(members: torch.Tensor) -> torch.Tensor:
    """(S, N) bool memberships -> (S, S) overlap-coefficient weights, zero diagonal, weak edges dropped."""
    m = members.double()
    inter = m @ m.T
    size = m.sum(1)
    w = inter / torch.minimum(size[:, None], size[None, :]).clamp(min=1)
    w.fill_diagonal_(0)
    return torch.where(w < EDGE_THRESHOLD, torch.zeros_like(w), w)


def spectral_positions(weights: torch.Tensor, dim: int = EMBED_DIM) -> torch.Tensor:
    """networkx.spectral_layout(G, dim) for a weighted graph given by its (S, S) weight matrix."""
    laplacian = torch.diag(weights.sum(1)) - weights
    _, vectors = torch.linalg.eigh(laplacian)
    pos = vectors[:, 1 : dim + 1]
    pos = pos - pos.mean(0)
    lim = pos.abs().max()
    return pos / lim if lim > 0 else pos


def class_embeddings(labels: torch.Tensor, tags: torch.Tensor, tag_names: tuple[str, ...], cls: int,
                     min_size: int) -> dict[str, torch.Tensor]:
    """Context name -> spectral position of subset cls(context), over the subsets with >= min_size images."""
    members = (labels == cls)[None, :] & tags.T  # (T, N)
    keep = members.sum(1) >= min_size
    names = [n for n, k in zip(tag_names, keep.tolist()) if k]
    if len(names) < 2:
        return {}
    pos = spectral_positions(meta_graph(members[keep]))
    return dict(zip(names, pos))


def context_distance(labels: torch.Tensor, tags: torch.Tensor, tag_names: tuple[str, ...], train: list[str],
                     test: list[str], min_size: int = 25) -> float:
    """Mean over classes of the mean embedding distance between train-context and test-context subsets."""
    per_class = []
    for cls in torch.unique(labels).tolist():
        emb = class_embeddings(labels, tags, tag_names, cls, min_size)
        if all(t in emb for t in (*train, *test)):
            per_class.append(sum((emb[a] - emb[b]).norm().item() for a in train for b in test) / (len(train) * len(test)))
    return sum(per_class) / len(per_class) if per_class else math.nan


@register_shift("context_subset", "concept")
def context_subset(data: ImageSet, *, seed: int, contexts: tuple[str, ...], reference: tuple[str, ...] = (),
                   min_size: Annotated[int, Field(ge=1)] = 25) -> ImageSet:
    """Keep the images tagged with any of `contexts`; report their MetaShift distance to the `reference` contexts.

    Put it on the training side with the training contexts and on the test side
    with the test contexts (and the training ones as `reference`): the record then
    shows `context_distance` beside the accuracy.
    """
    tags, names = data.meta.get("tags"), tuple(data.meta.get("tag_names", ()))
    if tags is None or not names:
        raise ValueError("context_subset needs a dataset with context tags (meta 'tags' and 'tag_names')")
    if tags.shape[0] != len(data):
        raise ValueError("context_subset must come before any shift that drops or repeats images")
    unknown = [c for c in (*contexts, *reference) if c not in names]
    if unknown or not contexts:
        raise ValueError(f"unknown or missing contexts {unknown}; the dataset's tags are: {', '.join(names)}")
    cols = [names.index(c) for c in contexts]
    keep = tags[:, cols].any(1).nonzero().flatten()
    out = data.subset(keep)
    meta = {**data.meta, "tags": tags[keep], "contexts": list(contexts)}
    if reference:
        universe = data.meta.get("tag_universe", {"labels": data.labels, "tags": tags})
        d = context_distance(universe["labels"], universe["tags"], names, list(reference), list(contexts), min_size)
        meta["report"] = {**data.meta.get("report", {}), "context_distance": d}
    return out.with_(meta=meta)
