"""The model wrapper every source model is: images in [0, 1] -> preprocessing -> network -> logits.

The network is stored unchanged as `net` (so a published checkpoint loads into it under its
own parameter names) and its classifier layer is named (`head`, e.g. "fc" or "linear"), which
splits the model into features (everything up to the head's input) and classifier (the head).
Methods that need that split (feature-based adaptation, prototype classifiers) use
`features_and_logits`, never a layer name of their own. Preprocessing (resize and centre
crop to the input size, mean / std; models/preprocessing.py) lives here, so every method
keeps receiving images in [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .preprocessing import Preprocessing, resize_and_crop


class Classifier(nn.Module):
    def __init__(self, net: nn.Module, head: str, mean: Sequence[float] | float | None = None,
                 std: Sequence[float] | float | None = None, preprocessing: Preprocessing | None = None):
        super().__init__()
        self.net = net
        self.head_name = head
        self.head  # the named layer must exist
        self.set_preprocessing(preprocessing or Preprocessing(mean=mean, std=std))

    def set_preprocessing(self, p: Preprocessing) -> None:
        self.preprocessing = p
        # not saved in state dicts: a checkpoint is the network's own weights
        self.register_buffer("mean", _channel_vector(p.mean), persistent=False)
        self.register_buffer("std", _channel_vector(p.std), persistent=False)

    @property
    def head(self) -> nn.Module:
        """The classifier layer (looked up by name, so a wrapper installed in its place is found too)."""
        return self.net.get_submodule(self.head_name)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        x = resize_and_crop(x, self.preprocessing)
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the head's input flattened to (N, D), the logits) in one forward pass."""
        seen: list[torch.Tensor] = []
        handle = self.head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        try:
            logits = self(x)
        finally:
            handle.remove()
        return seen[-1].flatten(1), logits


def _channel_vector(value: Sequence[float] | None) -> torch.Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    return t.view(1, -1, 1, 1)


def last_linear(net: nn.Module, within: Sequence[str] = ("",)) -> str:
    """The dotted name of the last nn.Linear inside the first of `within` that `net` has ("" = the
    whole network); the module itself when it holds no Linear (SqueezeNet's head is a conv)."""
    for name in within:
        try:
            module = net.get_submodule(name)
        except AttributeError:
            continue
        linear = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
        if linear:
            return ".".join(p for p in (name, linear[-1]) if p)
        if name:
            return name
    raise LookupError(f"no nn.Linear layer in {'/'.join(n or 'the network' for n in within)}")
