"""Model manifests (`kind: model` in data_manifests/NAME.yaml): published weights and what they need.

The `model:` section:
  arch, params       the architecture and its parameters (`model: {arch: ..., ...}` fields)
  file               which of the manifest's files holds the weights (default: the only one)
  key_map            {old prefix: new prefix} renames of the checkpoint's keys
  num_classes        how many classes the weights predict (checked against the dataset)
  preprocessing      required: mean, std, input_size, resize, interpolation (models/preprocessing.py)
  published          {accuracy, split, source}: the clean accuracy its authors report, and on what
The files are fetched and verified like a dataset's (`shiftbench data fetch NAME`) into
ROOT/NAME/, and verified again (sha256, or the weaker sha256 prefix) before every load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import UserError
from ..core.hashing import file_sha256
from ..data.location import data_root, dataset_dir
from ..data.manifest import Manifest, ManifestFile, load_manifest
from .preprocessing import Preprocessing


class Published(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accuracy: Annotated[float, Field(ge=0, le=1)]
    split: str = Field(description="the data the accuracy was measured on")
    source: str = ""


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str
    params: dict[str, Any] = Field(default_factory=dict)
    file: str | None = None
    key_map: dict[str, str] = Field(default_factory=dict)
    num_classes: Annotated[int, Field(ge=1)] | None = None
    preprocessing: Preprocessing
    published: Published | None = None


def manifest_path(name: str) -> str:
    return f"data_manifests/{name}.yaml"


def load_model_manifest(name: str, *, referrer: str | None = None) -> tuple[Manifest, ModelCard]:
    manifest = load_manifest(name, referrer=referrer, field="model.weights")
    where = manifest_path(manifest.name)
    if manifest.kind != "model":
        raise UserError(f"'{name}' is a {manifest.kind} manifest, not model weights", source=referrer or where,
                        field="model.weights")
    try:
        card = ModelCard(**manifest.model)
    except ValidationError as e:
        err = e.errors()[0]
        raise UserError(err["msg"], source=where, field=".".join(["model", *map(str, err["loc"])])) from None
    weights_entry(manifest, card)
    return manifest, card


def weights_entry(manifest: Manifest, card: ModelCard) -> ManifestFile:
    where = manifest_path(manifest.name)
    if card.file is None:
        if len(manifest.files) != 1:
            raise UserError(f"{len(manifest.files)} files listed: name the weights with model.file", source=where,
                            field="model.file")
        return manifest.files[0]
    for f in manifest.files:
        if f.path == card.file:
            return f
    raise UserError(f"'{card.file}' is not among the listed files", source=where, field="model.file")


def weights_file(manifest: Manifest, card: ModelCard, data_dir: str | Path | None = None) -> tuple[Path, str]:
    """The verified weights file on disk and its sha256, or a one-line error saying how to get it / what is wrong."""
    entry = weights_entry(manifest, card)
    where = manifest_path(manifest.name)
    candidates = [dataset_dir(manifest, data_dir) / entry.path, data_root(data_dir) / entry.path]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise UserError(f"the weights are not on disk (looked for {candidates[0]}); run `shiftbench data fetch "
                        f"{manifest.name}`, or point --data-dir / $SHIFTBENCH_DATA at a folder holding "
                        f"{manifest.name}/{entry.path}", source=where, field="files")
    got = file_sha256(path)
    if entry.sha256 and got != entry.sha256:
        raise UserError(f"{path} has sha256 {got}, the manifest says {entry.sha256}; nothing was loaded "
                        f"(run `shiftbench data fetch {manifest.name}` to download it again)", source=where,
                        field="files.sha256")
    if not entry.sha256 and entry.sha256_prefix and not got.startswith(entry.sha256_prefix):
        raise UserError(f"{path} has sha256 {got}, which does not start with the manifest's "
                        f"{entry.sha256_prefix}; nothing was loaded", source=where, field="files.sha256_prefix")
    return path, got
