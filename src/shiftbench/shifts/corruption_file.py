"""The `corruption_file` shift: the published corrupted copy of the test split, read from files.

CIFAR-10-C, CIFAR-100-C and MNIST-C hold, row for row, the source dataset's
official test images under each corruption. This shift swaps the test split's
images for those rows, so a benchmark on the clean dataset can play the
published files as scenarios beside (and labelled differently from) the
corruptions our own generators make. It checks that the files' labels equal the
split's, row by row, so files from another dataset or order are refused. A test split
that a benchmark subsampled or shuffled (data/test_stream.py) carries meta["rows"], the
stored row of each image, and gets those rows of the files.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ..core.errors import UserError
from ..core.imageset import ImageSet
from ..core.spill import take_rows
from ..data.common import shape_images
from ..data.location import require_data
from ..data.manifest import load_manifest
from ..data.test_stream import ROWS
from .registry import register_shift

FILE_LOADERS = ("cifar_c", "mnist_c")


def _known_corrupted_dataset(name: str) -> str:
    manifest = load_manifest(name)
    if manifest.loader not in FILE_LOADERS:
        raise ValueError(f"'{name}' is read by loader '{manifest.loader}'; corrupted copies use {', '.join(FILE_LOADERS)}")
    return name


@register_shift("corruption_file", "covariate")
def corruption_file(data: ImageSet, *, seed: int,
                    dataset: Annotated[str, AfterValidator(_known_corrupted_dataset)],
                    corruption: str,
                    severity: Annotated[int, Field(ge=1, le=5)] | None = None) -> ImageSet:
    """Published corrupted test images (CIFAR-10-C, CIFAR-100-C, MNIST-C) read from files, not generated."""
    manifest = load_manifest(dataset)
    folder = require_data(manifest)
    if manifest.loader == "cifar_c":
        from ..data.cifar_c import check_corruption, read_cifar_c

        check_corruption(manifest, corruption)
        if severity is None:
            raise UserError(f"{dataset} has 5 severities: give severity 1..5", field="severity")
        images, labels = read_cifar_c(folder, corruption, severity,
                                      int(manifest.params.get("rows_per_severity", 10_000)))
    else:
        from ..data.mnist_c import read_mnist_c

        images, labels = read_mnist_c(folder, corruption, "test")
    rows = data.meta.get(ROWS)
    if rows is not None and len(rows) == len(data) and (len(rows) == 0 or int(rows.max()) < len(labels)):
        images, labels = take_rows(images, rows), labels[rows]
    if len(labels) != len(data) or not bool((labels == data.labels).all()):
        raise UserError(f"the labels in {dataset}/{corruption} do not match the test split row for row "
                        f"({len(labels)} vs {len(data)} rows): these files are not this dataset's test set")
    images = shape_images(images, data.images.shape[1], data.image_size)
    meta = {**data.meta, "corruption": corruption, "severity": severity, "corruption_source": f"files:{dataset}"}
    return data.with_(images=images, meta=meta)
