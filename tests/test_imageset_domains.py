"""ImageSet.domains: a per-image domain index that follows every subset and enters the hash."""

import pytest
import torch

from shiftbench.core.imageset import ImageSet


def _set(domains=None):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8, generator=g)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    return ImageSet(images, labels, ("a", "b"), domains=domains, domain_names=("p", "q", "r") if domains is not None else ())


def test_subset_carries_each_images_domain():
    s = _set(torch.tensor([0, 1, 2, 0, 1, 2]))
    sub = s.subset(torch.tensor([5, 0, 4]))
    assert sub.domains.tolist() == [2, 0, 1]
    assert sub.domain_names == ("p", "q", "r")


def test_domains_enter_the_hash_and_a_set_without_them_hashes_as_before():
    plain = _set()
    assert plain.sha256() == ImageSet(plain.images, plain.labels, plain.classes).sha256()
    a, b = _set(torch.tensor([0, 1, 2, 0, 1, 2])), _set(torch.tensor([0, 0, 0, 0, 0, 0]))
    assert a.sha256() != b.sha256() != plain.sha256()


def test_domains_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="domains"):
        _set(torch.tensor([0, 1]))
