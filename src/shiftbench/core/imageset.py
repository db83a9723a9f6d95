"""ImageSet: the one data type that flows from datasets through shifts to the evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .hashing import tensor_sha256
from .spill import copy_images, take_rows


@dataclass(frozen=True)
class ImageSet:
    """Images with labels and optional metadata.

    images: uint8 (N, C, H, W). labels: int64 (N,).
    groups: int64 (N,) or None, e.g. (label, colour) pairs for worst-group metrics.
    source_index: int64 (N,) or None; samples sharing a value are views of one
        original image (translation consistency is measured over them).
    classes: class names, len(classes) = K.
    domains: int64 (N,) or None; for sets made of several domains (DomainNet, PACS, WILDS
        hospitals), the index of each image's domain in `domain_names`.
    window: the side of the centred square the model sees (None: the whole image).
        Images larger than the window leave room for realistic translations.
    meta: scenario facts that metrics may need (e.g. the true target prior).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    groups: torch.Tensor | None = None
    source_index: torch.Tensor | None = None
    domains: torch.Tensor | None = None
    domain_names: tuple[str, ...] = ()
    window: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        n = self.images.shape[0]
        if self.labels.shape != (n,) or self.labels.dtype != torch.int64:
            raise ValueError(f"labels must be int64 of shape ({n},), got {self.labels.dtype} {tuple(self.labels.shape)}")
        for name in ("groups", "source_index", "domains"):
            t = getattr(self, name)
            if t is not None and (t.shape != (n,) or t.dtype != torch.int64):
                raise ValueError(f"{name} must be int64 of shape ({n},)")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def subset(self, index: torch.Tensor, images: torch.Tensor | None = None) -> ImageSet:
        """Rows at index (may repeat); a large result goes to a spill file (core/spill.py), never
        twice into RAM. `images`: the new rows' images when the caller has made them already
        (a shift that crops while it gathers), so the old ones are not copied for nothing."""
        index = torch.as_tensor(index, dtype=torch.int64)
        return replace(
            self,
            images=take_rows(self.images, index) if images is None else images,
            labels=self.labels[index],
            groups=None if self.groups is None else self.groups[index],
            source_index=None if self.source_index is None else self.source_index[index],
            domains=None if self.domains is None else self.domains[index],
        )

    def with_(self, **changes) -> ImageSet:
        return replace(self, **changes)

    def model_view(self) -> ImageSet:
        """The centred window the model sees; translation shifts crop elsewhere themselves."""
        view = centre_crop(self.images, self.window)
        return replace(self, images=view if view.is_contiguous() else copy_images(view), window=None)

    def class_prior(self) -> torch.Tensor:
        counts = torch.bincount(self.labels, minlength=self.num_classes).double()
        return counts / counts.sum()

    def sha256(self) -> str:
        if self.domains is None:  # the hash of a set without domains is what it was before domains existed
            return tensor_sha256(self.images, self.labels, self.groups, self.source_index)
        return tensor_sha256(self.images, self.labels, self.groups, self.source_index, self.domains)


def centre_crop(images: torch.Tensor, window: int | None) -> torch.Tensor:
    """The centred window x window square of (..., H, W) images (a view; all of it if window is None or larger)."""
    size = images.shape[-1]
    if window is None or window >= size:
        return images
    off = (size - window) // 2
    return images[..., off : off + window, off : off + window]
