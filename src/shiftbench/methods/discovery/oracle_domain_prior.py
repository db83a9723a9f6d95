"""The source model with each domain's true label marginal: the oracle of the latent-label-shift setting.

Each image's logits get + log p_d(y) - log p_source(y) for its own domain d (the Bayes
correction, no calibration, as ddfa.source_with_true_priors states it). p_d(y) is the
scenario's truth, handed over in SourceContext.domain_priors, which the cell fills only for
methods with `oracle = True`: reported, never ranked. Logit-only and whole-segment, so it needs
the segment's domain indices and one call per segment.
"""

from __future__ import annotations

from typing import Any

from ..base import Method
from ..registry import register_method
from .ddfa import domains_of, source_with_true_priors


@register_method("oracle_domain_prior")
class OracleDomainPrior(Method):
    """z + log p_d(y) - log p(y) with p_d(y) the true label marginal of each image's domain (an upper bound)."""

    logit_only = True
    whole_segment = True
    oracle = True

    def __init__(self):
        pass

    def setup(self, model, source):
        if not source.domain_priors or any(p is None for p in source.domain_priors):
            raise RuntimeError("oracle_domain_prior needs a scenario whose every segment records its true p_d(y) "
                               "(a latent_label_domains shift)")
        super().setup(model, source)
        self.priors = [p.double().cpu() for p in source.domain_priors]
        self.segment = 0  # segments seen since setup (one call each); reset() must not rewind it

    def adapt_logits(self, logits):
        domains, _ = domains_of(self)
        truth = self.priors[self.segment]
        self.segment += 1
        return source_with_true_priors(logits.double().cpu(), domains, truth, self.source.prior).to(logits)

    def describe(self) -> dict[str, Any]:
        return {"oracle": True}
