"""A test set of some of the model's classes (ImageNet-R and -A: 200 of ImageNet's 1000): the subset-logit rule.

The rule, as the sets' authors evaluate: the model's logits are restricted to the test set's
classes, in the test set's class order, so column k of the restricted logits is the model's
logit of the test set's class k (looked up by name) and the prediction is the argmax over
those columns only. `subset_columns` gives those columns; `restrict_classifier` builds the
model that outputs only them, by keeping those rows of its Linear head (any other head is
followed by a column selection), so every method adapts, and is scored on, the restricted
classifier (as the test-time adaptation literature masks ImageNet-R/A logits) and methods that
read the head (T3A, SHOT-IM, LAME) see a Linear head of the subset's size. `restrict_split`
gives the source splits the same classes, relabelled to the subset's indices, so what methods
know of the source side (held-out logits, the class prior) speaks of the same classes.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..core.errors import UserError
from ..core.imageset import ImageSet
from .classifier import Classifier


def subset_columns(model_classes: Sequence[str], subset_classes: Sequence[str], *, what: str = "the test set"
                   ) -> list[int]:
    """For each class of the subset, in the subset's order, the index of that class among the model's classes."""
    index = {name: k for k, name in enumerate(model_classes)}
    missing = [c for c in subset_classes if c not in index]
    if missing:
        raise UserError(f"{what} has classes the model does not know: {', '.join(missing[:5])}"
                        f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''} (the model's classes are the "
                        f"benchmark dataset's {len(model_classes)})")
    if len(set(subset_classes)) != len(subset_classes):
        raise UserError(f"{what} names a class twice")
    return [index[c] for c in subset_classes]


class SelectColumns(nn.Module):
    """A head followed by keeping its output channels `columns`, in that order (for heads that are not Linear)."""

    def __init__(self, head: nn.Module, columns: Sequence[int]):
        super().__init__()
        self.inner = head
        self.register_buffer("columns", torch.as_tensor(list(columns), dtype=torch.int64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).index_select(1, self.columns)


def restrict_classifier(model: Classifier, columns: Sequence[int]) -> Classifier:
    """A copy of the model whose logits are its logits at `columns`, in that order (the model is left as it is)."""
    out = copy.deepcopy(model)
    head = out.head
    cols = torch.as_tensor(list(columns), dtype=torch.int64)
    if isinstance(head, nn.Linear):
        new = nn.Linear(head.in_features, len(cols), bias=head.bias is not None,
                        device=head.weight.device, dtype=head.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(head.weight[cols])
            if head.bias is not None:
                new.bias.copy_(head.bias[cols])
    else:
        new = SelectColumns(head, cols)
    parent, _, leaf = out.head_name.rpartition(".")
    setattr(out.net.get_submodule(parent) if parent else out.net, leaf, new)
    return out


def restrict_split(data: ImageSet, columns: Sequence[int], classes: Sequence[str]) -> ImageSet:
    """The rows of data whose label is one of `columns`, relabelled to its position there; class names `classes`."""
    relabel = torch.full((max(data.num_classes, max(columns, default=0) + 1),), -1, dtype=torch.int64)
    relabel[torch.as_tensor(list(columns), dtype=torch.int64)] = torch.arange(len(columns))
    new = relabel[data.labels] if len(data) else data.labels
    keep = (new >= 0).nonzero().flatten()
    return data.subset(keep).with_(labels=new[keep], classes=tuple(classes))
