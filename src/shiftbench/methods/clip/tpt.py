"""TPT, test-time prompt tuning (Shu et al., NeurIPS 2022), on a CLIP zero-shot model.

Per test image, episodically: the prompt context (the token embeddings of `ctx_init`, "a photo
of a" in the authors' runs, before each class name and a full stop) and the optimiser's state
are reset; the image and n_views - 1 augmented views (views.py) are encoded; the `selection`
fraction of views with the lowest prediction entropy (int(64 x 0.1) = 6) is kept; the loss is
the entropy of their averaged probabilities (computed in log space); `steps` AdamW steps update
the context only; the prediction is the original view's, with the tuned prompt. Defaults are
the authors' (azshue/TPT, tpt_classification.py and scripts/test_tpt.sh): 64 views, top 10%,
one step, AdamW lr 5e-3 (PyTorch's weight decay 0.01). They ran in mixed precision with a
GradScaler; here everything is float32 (a loss scale does not change an Adam step). Logits use
the model's logit scale (100 for OpenAI's weights) times cosine similarity, as theirs.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from ..base import Method
from ..registry import register_method
from .clip_model import clip_network, image_features, text_features_from_embeddings
from .views import augmented_views


def select_confident(logits: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the int(N * fraction) rows of lowest softmax entropy (at least one)."""
    entropy = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
    return torch.argsort(entropy)[: max(1, int(len(logits) * fraction))]


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean of softmax(logits) over the rows, in log space."""
    log_p = logits.log_softmax(1)
    log_mean = (torch.logsumexp(log_p, 0) - math.log(len(logits))).clamp(min=torch.finfo(log_p.dtype).min)
    return -(log_mean.exp() * log_mean).sum()


class PromptContext(nn.Module):
    """Learnable context vectors shared by every class's prompt '<ctx> <class name>.'; forward -> normalised text features."""

    def __init__(self, clip: nn.Module, tokenizer, class_names: tuple[str, ...], ctx_init: str):
        super().__init__()
        self.clip = [clip]  # not a submodule: its parameters stay frozen and out of this module's state
        words = ctx_init.replace("_", " ")
        n_ctx = len(words.split(" "))
        device = clip.token_embedding.weight.device
        with torch.no_grad():
            init = clip.token_embedding(tokenizer([words]).to(device))[0, 1 : 1 + n_ctx].detach().clone()
            self.tokens = tokenizer([f"{words} {name.replace('_', ' ')}." for name in class_names]).to(device)
            embedded = clip.token_embedding(self.tokens)
        self.register_buffer("prefix", embedded[:, :1].detach().clone())  # start token
        self.register_buffer("suffix", embedded[:, 1 + n_ctx :].detach().clone())  # class name, '.', end token
        self.register_buffer("initial", init)
        self.ctx = nn.Parameter(init.clone())

    def forward(self) -> torch.Tensor:
        n = self.prefix.shape[0]
        prompts = torch.cat([self.prefix, self.ctx.unsqueeze(0).expand(n, -1, -1), self.suffix], dim=1)
        return text_features_from_embeddings(self.clip[0], prompts, self.tokens)

    @torch.no_grad()
    def reset(self) -> None:
        self.ctx.copy_(self.initial)


@register_method("tpt")
class TPT(Method):
    """Per image: tune the prompt context on the most confident augmented views (one AdamW step), predict, reset."""

    requires = ("clip",)

    def __init__(self, n_views: Annotated[int, Field(ge=1, le=512)] = 64,
                 selection: Annotated[float, Field(gt=0, le=1)] = 0.1,
                 lr: Annotated[float, Field(gt=0)] = 5e-3, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 weight_decay: Annotated[float, Field(ge=0)] = 0.01, ctx_init: str = "a photo of a"):
        self.n_views, self.selection, self.lr, self.steps = n_views, selection, lr, steps
        self.weight_decay, self.ctx_init = weight_decay, ctx_init

    def setup(self, model, source):
        super().setup(model, source)
        net = clip_network(model)
        model.requires_grad_(False)
        self.prompt = PromptContext(net.clip, net.tokenizer, net.class_names, self.ctx_init)
        self.optimizer = torch.optim.AdamW([self.prompt.ctx], lr=self.lr, weight_decay=self.weight_decay)
        self.optimizer_start = self.optimizer.state_dict()
        self.generator = torch.Generator().manual_seed(source.seed)
        self.generator_start = self.generator.get_state()
        self.scale = net.logit_scale()

    def reset(self):
        self.generator.set_state(self.generator_start)

    def views(self, image: torch.Tensor) -> torch.Tensor:
        return augmented_views(image, self.n_views, self.generator)  # crops on the image's device, draws on the CPU

    def tuned_logits(self, views: torch.Tensor) -> torch.Tensor:
        """The episodic TPT update on one image's views (the original first): the original view's logits after tuning."""
        self.prompt.reset()
        self.optimizer.load_state_dict(self.optimizer_start)
        with torch.no_grad():
            features = image_features(self.model, views)
        chosen = None
        with torch.enable_grad():
            for _ in range(self.steps):
                logits = self.scale * features @ self.prompt().T
                chosen = select_confident(logits.detach(), self.selection) if chosen is None else chosen
                loss = marginal_entropy(logits[chosen])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        with torch.no_grad():
            return self.scale * features[:1] @ self.prompt().T

    def predict(self, x):
        return torch.cat([self.tuned_logits(self.views(image)) for image in x])
