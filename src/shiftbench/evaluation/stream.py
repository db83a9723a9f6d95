"""Run a method over a stream of scenario segments under a protocol.

Segments keep their full images (a translated view is larger than the model's
window); each batch is centre-cropped to `seg.window` here, except for methods
that declare `sees_full_image = True` (crop selection): those get the whole
image and read the window from `method.window`, set before every segment. A method that
declares `whole_segment = True` (transductive: DDFA) gets each segment as one batch, whatever
the batch size, with the segment's domain indices in `method.domains` (None when the segment
has none); the protocols then reset it at segment bounds at most.

Protocols (when the method is reset):
  episodic      before every batch
  per_scenario  at the start of every segment (a plain scenario is one segment)
  continual     once, at the start of the stream; state carries across segments

The segments are the stream as played (run/workspace.py): a gradual scenario's one segment per
(chain, severity), a mixed one's single shuffled segment, a cycled one's copies. Batches never
straddle two segments, as a data loader per domain would give them.
"""

from __future__ import annotations

import torch

from ..core.imageset import ImageSet, centre_crop
from ..core.spill import staged
from ..methods.base import Method
from ..models.forward import batches, to_float

PROTOCOLS = ("episodic", "per_scenario", "continual")


def run_stream(method: Method, segments: list[ImageSet], protocol: str, batch_size: int, device: torch.device,
               base_logits: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Logits for every segment, batch by batch, with resets as the protocol says.

    For logit-only methods pass `base_logits` (the source model's logits per
    segment); the method then never touches images.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}")
    if method.logit_only and base_logits is None:
        raise ValueError("a logit-only method needs the source logits")
    if batch_size < method.min_batch_size:
        raise ValueError(f"batch size {batch_size} < {method.min_batch_size}, the smallest this method adapts from")
    out = []
    method.reset()
    for i, seg in enumerate(segments):
        if protocol == "per_scenario" and i > 0:
            method.reset()
        images = None if method.logit_only else staged(seg.images, device)
        crop_to = None if method.sees_full_image else seg.window
        if method.sees_full_image:
            method.window = seg.window or seg.image_size
        if method.whole_segment:
            method.domains = seg.domains
        spans = [slice(0, len(seg))] if method.whole_segment and len(seg) else batches(len(seg), batch_size)
        parts = []
        for b, s in enumerate(spans):
            if protocol == "episodic" and (b > 0 or i > 0):
                method.reset()
            if method.logit_only:
                logits = method.adapt_logits(base_logits[i][s].to(device))
            else:
                logits = method.predict(to_float(centre_crop(images[s].to(device, non_blocking=True), crop_to)))
            check_logits(logits, s.stop - s.start, seg.num_classes, "adapt_logits" if method.logit_only else "predict")
            parts.append(logits.detach().float().cpu())
        out.append(torch.cat(parts) if parts else torch.empty(0, seg.num_classes))
    return out


class BadLogits(ValueError):
    pass


def check_logits(logits, n: int, k: int, by: str) -> None:
    """Logits must be a float tensor of shape (batch, classes): anything that merely broadcasts
    (a (1, K) row, 20 columns for 10 classes, an int64 one-hot) would be scored wrongly."""
    if not isinstance(logits, torch.Tensor):
        raise BadLogits(f"{by} returned {type(logits).__name__}, not a tensor of logits")
    if not logits.is_floating_point() or tuple(logits.shape) != (n, k):
        raise BadLogits(f"{by} returned {str(logits.dtype).replace('torch.', '')} logits of shape {tuple(logits.shape)}; "
                        f"expected floating-point logits of shape ({n}, {k})")
