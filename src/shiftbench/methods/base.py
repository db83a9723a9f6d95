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

A transductive method that needs all of a segment at once (DDFA: a domain discriminator and
clustering over the pooled unlabelled images) sets `whole_segment = True`: each segment then
comes as one call to `predict` (or `adapt_logits`), whatever the batch size, and
`self.domains` holds the segment's domain index per image (ImageSet.domains; None when the
segment has none). Images are never labelled; the segment's meta stays with the evaluator.
The whole segment is on the device at once, so such methods suit small test sets.

A composite method (`wraps_base = True`: online_em, lsa) runs another method, its `base`,
inside; the methods it may wrap are those that declare `wrappable = True` and pass its
`base_problem` check, so a new method becomes a possible base by saying so in its own file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..core.imageset import ImageSet
from ..models.forward import forward
from .labelshift.calibration import Calibrator, fit_calibrator


@dataclass
class SourceContext:
    """What a method may know of the source side, shared by every cell on one source model.

    model: the frozen source model; read it, never adapt it (setup() gets a copy of its own).
    train / val: the source training split (to train an auxiliary network) and a held-out
    source split. prior: the source class prior (float64, CPU). batch_size: for forward
    passes over source data. target_priors: filled only for methods with `oracle = True`:
    (segment length, true class prior) per segment of the stream, in order; domain_priors, for
    them too: per segment, its true p_d(y) (K x D) under latent label shift, else None. memo holds what is
    computed from these once per model (held-out logits, fitted calibrators).
    """

    model: nn.Module = field(repr=False)
    val: ImageSet = field(repr=False)
    prior: torch.Tensor
    device: torch.device
    seed: int
    model_sha256: str = ""
    train: ImageSet | None = field(default=None, repr=False)
    batch_size: int = 256
    target_priors: list[tuple[int, torch.Tensor]] | None = field(default=None, repr=False)
    domain_priors: list[torch.Tensor | None] | None = field(default=None, repr=False)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return self.val.num_classes

    def remember(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def val_logits_and_labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of the unadapted source model on the held-out source split, on the CPU."""
        return self.remember("val_logits", lambda: (forward(self.model, self.val, self.batch_size, self.device),
                                                    self.val.labels.clone()))

    def calibrator(self, kind: str) -> Calibrator:
        """A calibrator of the source model's logits, fitted by NLL on the held-out split (none|ts|bcts|vs)."""
        return self.remember(("calibrator", kind), lambda: fit_calibrator(*self.val_logits_and_labels(), kind))


class Method:
    """Base class: the unadapted source model. Subclasses override what they change."""

    name: ClassVar[str] = "method"
    logit_only: ClassVar[bool] = False
    oracle: ClassVar[bool] = False  # uses test labels (an upper bound): reported, never ranked
    sees_full_image: ClassVar[bool] = False
    window: int | None = None  # set by the evaluator for sees_full_image methods
    # one predict / adapt_logits call per segment with all its images, and `domains` set before it
    whole_segment: ClassVar[bool] = False
    domains: torch.Tensor | None = None  # set by the evaluator for whole_segment methods
    # may serve as the `base` of a composite method: predicts from images with the model it is given
    wrappable: ClassVar[bool] = False
    # replaces the model's normalisation modules by modules of its own (composites that wrap
    # those modules themselves cannot use such a base)
    swaps_norm_layers: ClassVar[bool] = False
    # a composite: its parameters `base` and `base_params` name and configure the method it wraps
    wraps_base: ClassVar[bool] = False
    fixed_base: ClassVar[str | None] = None  # a composite registered with its base built in (lsa+tent)
    # the smallest test batch the method can adapt from (e.g. 2 for one that needs batch statistics);
    # a submission skips the scenarios whose batch size is smaller, and validation says which
    min_batch_size: ClassVar[int] = 1
    # what the source model must have (models/traits.py): "batchnorm" for a method that only
    # changes BatchNorm layers, "clip" for one that needs a CLIP zero-shot model; validation
    # skips, with the reason, the benchmarks whose model lacks it
    requires: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def base_problem(cls, base: type["Method"]) -> str | None:
        """For a composite: why `base` cannot be its base, or None when it can."""
        return None if base.wrappable else "it is not a method that composites can wrap"

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
