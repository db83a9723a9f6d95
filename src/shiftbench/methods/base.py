"""The Method interface every adaptation method implements.

Lifecycle, driven by the evaluator:
  setup(model, source)  once per cell; `model` is the cell's own copy of the source model
  reset()               at episode boundaries (what counts as one is the protocol's call)
  predict(x)            float images in [0, 1] on the device -> logits

A method that chooses where to look (crop selection) sets `sees_full_image =
True`: its `predict` then gets the segment's whole images, which may be larger
than the model's input, and `self.window` holds the side the model expects.
Every other method gets the centred window.

A method that only reshapes the source model's logits (label-shift corrections)
sets `logit_only = True` and implements `adapt_logits(logits)` instead of
`predict`; the evaluator then runs the source model once per scenario and shares
those logits among all such methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..core.imageset import ImageSet


@dataclass
class SourceContext:
    """What a method may know of the source side: held-out source data and the source class prior.

    source_train and model_sha256 let a method train (and cache) an auxiliary network of its
    own on the source data. target_priors is filled only for methods with `oracle = True`:
    (segment length, true class prior) per segment of the stream, in order.
    """

    source_val: ImageSet
    source_prior: torch.Tensor
    device: torch.device
    seed: int
    model: nn.Module | None = field(default=None, repr=False)
    batch_size: int = 256
    source_train: ImageSet | None = field(default=None, repr=False)
    model_sha256: str = ""
    val_logits_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = field(default=None, repr=False)
    target_priors: list[tuple[int, torch.Tensor]] | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return self.source_val.num_classes

    @cached_property
    def val_logits_and_labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of the unadapted source model on the held-out source split, on CPU.

        The runner passes `val_logits_fn`, the workspace's memo shared by every cell on one model;
        without it they are computed here, once per context.
        """
        if self.val_logits_fn is not None:
            return self.val_logits_fn()
        from ..evaluate.stream import source_logits

        return source_logits(self.model, self.source_val, self.batch_size, self.device), self.source_val.labels.clone()


class Method:
    """Base class: the unadapted source model. Subclasses override what they change."""

    name: ClassVar[str] = "method"
    logit_only: ClassVar[bool] = False
    oracle: ClassVar[bool] = False  # uses test labels (an upper bound): reported, never ranked
    sees_full_image: ClassVar[bool] = False
    window: int | None = None  # set by the evaluator for sees_full_image methods

    def setup(self, model: nn.Module, source: SourceContext) -> None:
        self.model = model
        self.source = source
        self.model.eval()

    def reset(self) -> None:
        """Return to the state right after setup."""

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def adapt_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """For logit_only methods: the source model's logits of one batch -> adapted logits."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Extra facts a method wants in its cell record (e.g. its prior estimate)."""
        return {}
