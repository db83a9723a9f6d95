"""The CLIP methods against the authors' update rules, ported here independently (azshue/TPT tpt_classification.py
and clip/custom_clip.py; kdiAAA/TDA tda_runner.py and utils.py), on the same random tiny open_clip model."""

from __future__ import annotations

import copy
import math
import operator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_clip import OPENAI_MEAN, OPENAI_STD, TINY_CONFIG, open_clip, tiny_clip

from shiftbench.core.imageset import ImageSet
from shiftbench.methods import SourceContext, create_method
from shiftbench.methods.clip.views import augmented_views, crop_box
from shiftbench.models.train import build_classifier

NAMES = ("cat", "dog", "car", "tree", "boat", "bird", "house", "fish", "apple", "plane")
TEMPLATES = ("a photo of a {}.", "a {}.")


def clip_source(seed: int = 0):
    model = build_classifier({"arch": "open_clip:tiny", "config": TINY_CONFIG, "templates": list(TEMPLATES),
                              "class_names": list(NAMES)}, len(NAMES), 3)
    clip = tiny_clip(seed)
    model.net.clip.load_state_dict(clip.state_dict())
    model.net.weights_loaded(f"{seed:064d}")
    return model.eval(), clip.eval()


def context(model, seed: int = 0) -> SourceContext:
    val = ImageSet(torch.zeros(2, 3, 24, 24, dtype=torch.uint8), torch.tensor([0, 1]), NAMES)
    return SourceContext(model=model, val=val, prior=torch.full((len(NAMES),), 0.1), device=torch.device("cpu"),
                         seed=seed)


def method(name: str, params=None, seed: int = 0):
    model, clip = clip_source()
    m = create_method(name, params or {})
    m.setup(copy.deepcopy(model), context(model, seed))
    return m, clip


def normalise(images):
    return (images - torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)) / torch.tensor(OPENAI_STD).view(1, 3, 1, 1)


# ---- TPT, as the authors wrote it (their PromptLearner with class token at the end, TextEncoder, one step) ----

class RefTPT(torch.nn.Module):
    def __init__(self, clip, classnames, ctx_init="a_photo_of_a", lr=5e-3):
        super().__init__()
        self.clip = clip
        tokenize = open_clip.SimpleTokenizer(context_length=TINY_CONFIG["text_cfg"]["context_length"])
        ctx_init = ctx_init.replace("_", " ")
        n_ctx = len(ctx_init.split(" "))
        with torch.no_grad():
            embedding = clip.token_embedding(tokenize(ctx_init))
        ctx_vectors = embedding[0, 1:1 + n_ctx, :]
        self.ctx_init_state = ctx_vectors.detach().clone()
        self.ctx = torch.nn.Parameter(ctx_vectors.clone())
        prompts = [ctx_init + " " + name.replace("_", " ") + "." for name in classnames]
        self.tokenized_prompts = torch.cat([tokenize(p) for p in prompts])
        with torch.no_grad():
            embedding = clip.token_embedding(self.tokenized_prompts)
        self.token_prefix = embedding[:, :1, :]
        self.token_suffix = embedding[:, 1 + n_ctx:, :]
        self.optimizer = torch.optim.AdamW([self.ctx], lr)
        self.optim_state = copy.deepcopy(self.optimizer.state_dict())

    def text_features(self):
        ctx = self.ctx.unsqueeze(0).expand(len(self.token_prefix), -1, -1)
        x = torch.cat([self.token_prefix, ctx, self.token_suffix], dim=-2)
        x = x + self.clip.positional_embedding
        x = self.clip.transformer(x, attn_mask=self.clip.attn_mask)
        x = self.clip.ln_final(x)
        x = x[torch.arange(x.shape[0]), self.tokenized_prompts.argmax(dim=-1)] @ self.clip.text_projection
        return x / x.norm(dim=-1, keepdim=True)

    def inference(self, image):
        with torch.no_grad():
            image_features = self.clip.visual(image)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        return self.clip.logit_scale.exp() * image_features @ self.text_features().t()

    @staticmethod
    def select_confident_samples(logits, top):
        batch_entropy = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
        idx = torch.argsort(batch_entropy, descending=False)[:int(batch_entropy.size()[0] * top)]
        return logits[idx], idx

    @staticmethod
    def avg_entropy(outputs):
        logits = outputs - outputs.logsumexp(dim=-1, keepdim=True)
        avg_logits = logits.logsumexp(dim=0) - np.log(logits.shape[0])
        avg_logits = torch.clamp(avg_logits, min=torch.finfo(avg_logits.dtype).min)
        return -(avg_logits * torch.exp(avg_logits)).sum(dim=-1)

    def test_time_adapt(self, images, steps=1, top=0.1):
        with torch.no_grad():
            self.ctx.copy_(self.ctx_init_state)
        self.optimizer.load_state_dict(self.optim_state)
        selected_idx = None
        for _ in range(steps):
            output = self.inference(images)
            if selected_idx is not None:
                output = output[selected_idx]
            else:
                output, selected_idx = self.select_confident_samples(output, top)
            loss = self.avg_entropy(output)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            return self.inference(images[:1])


@pytest.mark.parametrize("steps", [1, 2])
def test_tpt_equals_the_authors_update_on_the_same_views(steps):
    tpt, clip = method("tpt", {"steps": steps})
    ref = RefTPT(clip, NAMES)
    torch.manual_seed(3)
    for _ in range(2):  # a second image: the prompt and the optimiser were reset in between
        views = torch.rand(64, 3, 24, 24)
        ours = tpt.tuned_logits(views)
        theirs = ref.test_time_adapt(normalise(views), steps=steps)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    # the step changed the prediction (else the comparison would be vacuous)
    with torch.no_grad():
        zero_shot = tpt.model(views[:1])
    assert (ours - zero_shot).abs().max() > 1e-3


def test_tpt_predicts_each_image_from_its_own_views_and_is_reproducible():
    tpt, _ = method("tpt", {"n_views": 8})
    x = torch.rand(3, 3, 24, 24)
    out = tpt.predict(x)
    g = torch.Generator().manual_seed(0)
    expected = torch.cat([tpt.tuned_logits(augmented_views(img, 8, g)) for img in x])
    torch.testing.assert_close(out, expected)
    tpt.reset()
    torch.testing.assert_close(tpt.predict(x), out)


def test_views_start_with_the_image_and_crop_as_random_resized_crop_does():
    image = torch.rand(3, 24, 24)
    views = augmented_views(image, 5, torch.Generator().manual_seed(0))
    assert views.shape == (5, 3, 24, 24) and torch.equal(views[0], image)
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        top, left, h, w = crop_box(100, 80, g)
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 80
        assert 0.08 * 8000 * 0.9 <= h * w <= 8000 and 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1


# ---- TDA, as the authors wrote it (positive and negative caches; logit scale x cosine) ----

def ref_update_cache(cache, pred, features_loss, shot_capacity, include_prob_map=False):
    item = features_loss if not include_prob_map else features_loss[:2] + [features_loss[2]]
    if pred in cache:
        if len(cache[pred]) < shot_capacity:
            cache[pred].append(item)
        elif features_loss[1] < cache[pred][-1][1]:
            cache[pred][-1] = item
        cache[pred] = sorted(cache[pred], key=operator.itemgetter(1))
    else:
        cache[pred] = [item]


def ref_cache_logits(image_features, cache, alpha, beta, clip_weights, neg_mask_thresholds=None):
    cache_keys, cache_values = [], []
    for class_index in sorted(cache.keys()):
        for item in cache[class_index]:
            cache_keys.append(item[0])
            cache_values.append(item[2] if neg_mask_thresholds else class_index)
    cache_keys = torch.cat(cache_keys, dim=0).permute(1, 0)
    if neg_mask_thresholds:
        cache_values = torch.cat(cache_values, dim=0)
        cache_values = ((cache_values > neg_mask_thresholds[0]) & (cache_values < neg_mask_thresholds[1])).float()
    else:
        cache_values = F.one_hot(torch.Tensor(cache_values).to(torch.int64), num_classes=clip_weights.size(1)).float()
    affinity = image_features @ cache_keys
    return alpha * ((-1) * (beta - beta * affinity)).exp() @ cache_values


def ref_clip_logits(images, clip, clip_weights):
    image_features = clip.encode_image(images)
    image_features /= image_features.norm(dim=-1, keepdim=True)
    clip_logits = clip.logit_scale.exp() * image_features @ clip_weights  # their literal 100 = OpenAI's logit scale
    if image_features.size(0) > 1:
        batch_entropy = -(clip_logits.softmax(1) * clip_logits.log_softmax(1)).sum(1)
        selected_idx = torch.argsort(batch_entropy, descending=False)[:int(batch_entropy.size()[0] * 0.1)]
        output = clip_logits[selected_idx]
        image_features = image_features[selected_idx].mean(0).unsqueeze(0)
        clip_logits = output.mean(0).unsqueeze(0)
        loss = RefTPT.avg_entropy(output)
        prob_map = output.softmax(1).mean(0).unsqueeze(0)
        pred = int(output.mean(0).unsqueeze(0).topk(1, 1, True, True)[1].t())
    else:
        loss = -(clip_logits.softmax(1) * clip_logits.log_softmax(1)).sum(1)
        prob_map = clip_logits.softmax(1)
        pred = int(clip_logits.topk(1, 1, True, True)[1].t()[0])
    return image_features, clip_logits, loss, prob_map, pred


def ref_clip_classifier(classnames, templates, clip):
    tokenize = open_clip.SimpleTokenizer(context_length=TINY_CONFIG["text_cfg"]["context_length"])
    weights = []
    for classname in classnames:
        class_embeddings = clip.encode_text(tokenize([t.format(classname.replace("_", " ")) for t in templates]))
        class_embeddings /= class_embeddings.norm(dim=-1, keepdim=True)
        class_embedding = class_embeddings.mean(dim=0)
        weights.append(class_embedding / class_embedding.norm())
    return torch.stack(weights, dim=1)


def ref_tda(stream, clip, pos, neg, views=1, seed=0):
    clip_weights = ref_clip_classifier(NAMES, TEMPLATES, clip)
    pos_cache, neg_cache, out = {}, {}, []
    g = torch.Generator().manual_seed(seed)
    for image in stream:
        images = normalise(augmented_views(image, views, g) if views > 1 else image[None])
        image_features, clip_logits, loss, prob_map, pred = ref_clip_logits(images, clip, clip_weights)
        prop_entropy = float(loss / math.log2(clip_weights.size(1)))
        ref_update_cache(pos_cache, pred, [image_features, loss], pos["shot_capacity"])
        if neg["entropy_threshold"][0] < prop_entropy < neg["entropy_threshold"][1]:
            ref_update_cache(neg_cache, pred, [image_features, loss, prob_map], neg["shot_capacity"], True)
        final_logits = clip_logits.clone()
        if pos_cache:
            final_logits += ref_cache_logits(image_features, pos_cache, pos["alpha"], pos["beta"], clip_weights)
        if neg_cache:
            final_logits -= ref_cache_logits(image_features, neg_cache, neg["alpha"], neg["beta"], clip_weights,
                                             neg["mask_threshold"])
        out.append(final_logits)
    return torch.cat(out), neg_cache


@pytest.mark.parametrize("setting", [
    {},  # the authors' ImageNet configuration
    {"neg_entropy": [0.0, 1.0], "neg_mask": [0.05, 0.9], "pos_shot": 2, "neg_shot": 3},
    {"neg_entropy": [0.0, 1.0], "n_views": 20},
])
@torch.no_grad()
def test_tda_equals_the_authors_caches_along_a_stream(setting):
    tda, clip = method("tda", setting)
    torch.manual_seed(5)
    stream = torch.rand(40, 3, 24, 24)
    ours = torch.cat([tda.predict(stream[i:i + 8]) for i in range(0, 40, 8)])  # batches: still one image at a time
    p = {"pos_shot": 3, "pos_alpha": 2.0, "pos_beta": 5.0, "neg_shot": 2, "neg_alpha": 0.117, "neg_beta": 1.0,
         "neg_entropy": (0.2, 0.5), "neg_mask": (0.03, 1.0), "n_views": 1, **setting}
    theirs, neg_cache = ref_tda(stream, clip, {"shot_capacity": p["pos_shot"], "alpha": p["pos_alpha"], "beta": p["pos_beta"]},
                                {"shot_capacity": p["neg_shot"], "alpha": p["neg_alpha"], "beta": p["neg_beta"],
                                 "entropy_threshold": p["neg_entropy"], "mask_threshold": p["neg_mask"]},
                                views=p["n_views"])
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert tda.describe()["negative_entries"] == sum(map(len, neg_cache.values()))
    assert neg_cache, "the negative cache must take part for the comparison to cover it"
    if not setting:  # the authors' entropy gate lets some images in and keeps others out
        assert 0 < sum(map(len, neg_cache.values())) < len(stream)
    zero_shot = tda.model(stream)
    assert not torch.allclose(ours, zero_shot, atol=1e-3)


@torch.no_grad()
def test_tda_reset_empties_the_caches():
    tda, _ = method("tda")
    stream = torch.rand(6, 3, 24, 24)
    first = tda.predict(stream)
    tda.reset()
    torch.testing.assert_close(tda.predict(stream), first)
    assert tda.describe()["positive_entries"] > 0


@torch.no_grad()
def test_zero_shot_is_the_heads_prediction():
    zs, clip = method("zero_shot")
    x = torch.rand(4, 3, 24, 24)
    weights = ref_clip_classifier(NAMES, TEMPLATES, clip)
    feats = clip.encode_image(normalise(x), normalize=True)
    torch.testing.assert_close(zs.predict(x), clip.logit_scale.exp() * feats @ weights, rtol=1e-5, atol=1e-5)
