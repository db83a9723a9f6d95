"""Natural shift: play the images of some of a multi-domain set's domains (DomainNet, PACS, WILDS splits).

On the test side it picks the target domain of a scenario; as a train shift it picks the
source domain(s) the source model is trained on (its source_train and source_val, so
methods that use source statistics see the source domains only). Names, not indices, so
a benchmark reads as the papers do: train on real, test on clipart.
"""

from __future__ import annotations

from ..core.imageset import ImageSet
from .registry import register_shift


@register_shift("domain_subset", "natural")
def domain_subset(data: ImageSet, *, seed: int, domains: tuple[str, ...]) -> ImageSet:
    """Keep the images of the named domains (the data set's domain names, e.g. clipart, photo, test)."""
    if data.domains is None or not data.domain_names:
        raise ValueError("domain_subset needs a data set made of several domains (ImageSet.domains)")
    unknown = [d for d in domains if d not in data.domain_names]
    if unknown or not domains:
        raise ValueError(f"unknown or missing domains {unknown}; the data set's domains are: "
                         f"{', '.join(data.domain_names)}")
    wanted = [data.domain_names.index(d) for d in domains]
    keep = sum(data.domains == w for w in wanted).bool().nonzero().flatten()
    if not len(keep):
        raise ValueError(f"no images in domains {', '.join(domains)}")
    return data.subset(keep)
