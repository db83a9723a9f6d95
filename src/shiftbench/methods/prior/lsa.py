"""Label Shift Adapter (Park et al., ICCV 2023), on top of source, bn_adapt or tent.

Our reading of the paper (it has no public code); every choice is a parameter here:

* What it adapts: deltas to the affine parameters of the last `bn_layers` BatchNorm layers and
  to the classifier bias, produced by a small MLP from the target prior (prior/adapter.py).
  The MLP's output is g(u) - g(0) with u = log(q + 1e-3) - log(p + 1e-3), so at the source prior the model is
  exactly the source model.
* Training: on the source training split, `adapter_steps` Adam steps; each step resamples a batch
  of `adapter_batch_size` images to a prior q ~ Dirichlet(alpha), alpha drawn from `alphas`, and
  minimises cross-entropy. BN statistics while training match the base at test time: source
  running statistics for base=source, batch statistics for bn_adapt / tent. Cached under
  $SHIFTBENCH_CACHE/adapters by (checkpoint sha256, data sha256, prior, recipe).
* Prior at test time: the running MLLS (EM) estimate of the target prior from calibrated
  posteriors that the adapter never touched (so its output never feeds back into its input):
  prior_from='source' (default) the frozen source model's, 'base' the base model's without
  deltas (biased under label shift when the base normalises with class-skewed batches);
  momentum as in online_em (None: everything since reset).
* Per batch: z0 (no deltas) -> EM update of q -> deltas = adapter(q) -> the
  base's prediction with deltas (for tent: its entropy step runs with the deltas in place;
  tent still adapts only the original norm-layer parameters, the deltas are constants).
* bayes_adjust (default on): also add log q - log p to the logits, in training and at test, so
  the adapter learns only the residual beyond the Bayes correction. Without it the adapter must
  learn the prior term itself from training images the source model already fits, and on
  digits it then under-corrects.
* Defaults: bn_layers=1, hidden=64, 200 steps of batch 64, alphas (0.1, 1, 10), Adam lr 1e-3;
  about 15 s of training on a busy 2-core CPU for the digits model, once per (model, recipe).
* The deltas are applied through wrappers (DeltaBatchNorm, DeltaLinear) that keep the original
  modules, so bn_adapt's batch statistics and tent's optimiser act on the same parameters as
  without the adapter.
"""

from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any, Literal

import torch
from pydantic import Field

from ..base import Method
from ..labelshift import RunningPrior, adjust_logits
from ..registry import create_method, register_method
from .adapter import install_delta_layers, set_deltas
from .adapter_training import get_adapter
from .prior_correction import Calibration


@register_method("lsa")
class LabelShiftAdapter(Method):
    """Adapter(q) -> deltas for the last BN affine parameters and the classifier bias; q from running EM."""

    wraps_base = True

    @classmethod
    def base_problem(cls, base):
        if base.swaps_norm_layers:
            return "it replaces the BatchNorm layers that the adapter's deltas act on"
        return super().base_problem(base)

    def __init__(self, base: str = "source", base_params: dict[str, Any] | None = None,
                 calibration: Calibration = "bcts", momentum: Annotated[float, Field(gt=0, le=1)] | None = None,
                 prior_from: Literal["source", "base"] = "source",
                 bn_layers: Annotated[int, Field(ge=0, le=100)] = 1, hidden: Annotated[int, Field(ge=1, le=4096)] = 64,
                 adapter_steps: Annotated[int, Field(ge=1, le=100_000)] = 200,
                 adapter_batch_size: Annotated[int, Field(ge=2, le=4096)] = 64,
                 alphas: tuple[Annotated[float, Field(gt=0)], ...] = (0.1, 1.0, 10.0), adapter_lr: Annotated[float, Field(gt=0)] = 1e-3,
                 bayes_adjust: bool = True):
        self.base_name, self.base_params = base, dict(base_params or {})
        self.prior_from = prior_from
        self.calibration, self.momentum, self.bayes_adjust = calibration, momentum, bayes_adjust
        self.recipe = {"normalization": "running" if base == "source" else "batch", "steps": adapter_steps,
                       "batch_size": adapter_batch_size, "alphas": [float(a) for a in alphas], "lr": adapter_lr,
                       "bn_layers": bn_layers, "hidden": hidden, "bayes_adjust": bayes_adjust}

    def setup(self, model, source):
        super().setup(model, source)
        if source.train is None:
            raise RuntimeError("lsa needs the source training split (SourceContext.train)")
        self.source_prior = source.prior.double().cpu()
        self.adapter, self.adapter_info = get_adapter(source.model, source.model_sha256, source.train,
                                                      self.source_prior, {**self.recipe, "seed": source.seed},
                                                      source.device)
        self.wrappers = install_delta_layers(self.model, self.recipe["bn_layers"])
        self.base = create_method(self.base_name, self.base_params)
        self.base.setup(self.model, source)
        self.calibrator = source.calibrator(self.calibration)
        self.running = RunningPrior(self.source_prior, self.momentum)

    def reset(self):
        self.base.reset()
        self.running.reset()

    def predict(self, x):
        set_deltas(self.wrappers, None)
        with torch.no_grad():
            z0 = self.source.model(x) if self.prior_from == "source" else self.model(x)
        q = self.running.update(self.calibrator(z0.double()).softmax(1).cpu())
        with torch.no_grad():
            set_deltas(self.wrappers, [d.detach() for d in self.adapter(q.float().to(x.device))])
        logits = self.base.predict(x).detach()
        set_deltas(self.wrappers, None)
        return adjust_logits(logits, q, self.source_prior) if self.bayes_adjust else logits

    def describe(self):
        return {"prior_estimate": self.running.estimate.tolist(), "base": self.base_name, **self.adapter_info}


def with_fixed_base(base: str):
    """An __init__ taking every lsa parameter except `base` (so parameter validation still sees them all)."""
    parent = LabelShiftAdapter.__init__

    def __init__(self, **params):
        parent(self, base=base, **params)

    sig = inspect.signature(parent)
    __init__.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "base"])
    __init__.__annotations__ = {k: v for k, v in typing.get_type_hints(parent, include_extras=True).items() if k != "base"}
    return __init__


@register_method("lsa+bn_adapt")
class LabelShiftAdapterBN(LabelShiftAdapter):
    """lsa with base=bn_adapt (the adapter trained with batch statistics)."""

    fixed_base = "bn_adapt"

    __init__ = with_fixed_base("bn_adapt")


@register_method("lsa+tent")
class LabelShiftAdapterTent(LabelShiftAdapter):
    """lsa with base=tent (the adapter trained with batch statistics; tent's entropy step sees the deltas)."""

    fixed_base = "tent"

    __init__ = with_fixed_base("tent")
