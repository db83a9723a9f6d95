"""Train the label shift adapter on source data resampled to Dirichlet priors, and cache it by content hash.

Each step draws alpha from `alphas`, a prior q ~ Dirichlet(alpha * 1), a batch of labels
from q and, for each label, a random source image of that class (a random crop, as in
ERM training); the frozen source model with deltas = adapter(q) is scored by cross-entropy.
`normalization` says which BN statistics the model uses while training, and must match
test time: 'running' (source statistics; base=source) or 'batch' (the batch's own
statistics; base=bn_adapt or tent). In 'batch' mode the adapter also learns to undo what a
class-skewed batch does to the batch statistics, which is where TTA suffers under label shift.

Cache: $SHIFTBENCH_CACHE/adapters/<key>.pt, key = hash of (source checkpoint sha256,
training data sha256, source prior, the full recipe).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.hashing import config_hash
from ...core.imageset import ImageSet
from ...core.paths import cache_dir
from ..labelshift.adjust import adjust_logits
from .adapter import PRIOR_EPS, PriorAdapter, delta_sizes, install_delta_layers, set_deltas

_memo: dict[str, PriorAdapter] = {}


def adapter_key(model_sha256: str, train: ImageSet, source_prior: torch.Tensor, recipe: dict[str, Any]) -> str:
    return config_hash({"model": model_sha256, "data": train.sha256(), "prior": source_prior.double().tolist(),
                        "recipe": recipe}, length=24)


def get_adapter(model: nn.Module, model_sha256: str, train: ImageSet, source_prior: torch.Tensor,
                recipe: dict[str, Any], device: torch.device) -> tuple[PriorAdapter, dict[str, Any]]:
    """The cached adapter for this (model, data, recipe), trained first if missing."""
    from ...models.train import save_state_dict

    key = adapter_key(model_sha256, train, source_prior, recipe)
    path = cache_dir() / "adapters" / f"{key}.pt"
    if key not in _memo:
        probe = install_delta_layers(copy.deepcopy(model), recipe["bn_layers"])
        adapter = PriorAdapter(source_prior, delta_sizes(probe), recipe["hidden"])
        if path.exists():
            adapter.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            info = train_adapter(adapter, model, train, device=device, **recipe)
            adapter.cpu()
            save_state_dict(adapter.state_dict(), path)
            print(f"trained label shift adapter {key} in {info['seconds']:.1f} s")
        _memo[key] = adapter.eval()
    return copy.deepcopy(_memo[key]).to(device), {"adapter_key": key}


def class_pools(labels: torch.Tensor, k: int) -> list[torch.Tensor]:
    return [torch.nonzero(labels == c).flatten() for c in range(k)]


def train_adapter(adapter: PriorAdapter, source_model: nn.Module, train: ImageSet, *, device: torch.device,
                  normalization: str, steps: int, batch_size: int, alphas: list[float], lr: float, seed: int,
                  bn_layers: int, hidden: int, bayes_adjust: bool = False) -> dict[str, Any]:
    from ...models.recipes.erm import random_crops
    from ..normalisation.bn_adapt import use_batch_statistics

    start = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = copy.deepcopy(source_model).to(device).eval()
    model.requires_grad_(False)
    if normalization == "batch":
        use_batch_statistics(model)
    wrappers = install_delta_layers(model, bn_layers)
    adapter.to(device).train()
    opt = torch.optim.Adam(adapter.parameters(), lr=lr)
    k = train.num_classes
    source_prior = adapter.log_source.exp().double().cpu() - PRIOR_EPS
    pools = [p for p in class_pools(train.labels, k)]
    present = torch.tensor([len(p) > 0 for p in pools], dtype=torch.float64)
    window = train.window or train.image_size
    for step in range(steps):
        alpha = alphas[int(torch.randint(len(alphas), (1,), generator=g))]
        q = torch._standard_gamma(torch.full((k,), float(alpha), dtype=torch.float64), generator=g) * present
        q = q / q.sum()
        y = torch.multinomial(q, batch_size, replacement=True, generator=g)
        idx = torch.stack([pools[c][torch.randint(len(pools[c]), (1,), generator=g)][0] for c in y.tolist()])
        x = random_crops(train.images[idx], window, g) if window < train.image_size else train.images[idx]
        set_deltas(wrappers, adapter(q.float().to(device)))
        logits = model(x.to(device).float().div_(255))
        if bayes_adjust:
            logits = adjust_logits(logits, q, source_prior)
        loss = F.cross_entropy(logits, y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"seconds": time.perf_counter() - start, "final_loss": loss.item()}
