"""Manifests (data_manifests/NAME.yaml): where a dataset, a set of model weights or an asset comes from, with
sha256 of each file.

`kind: data` (the default) names a loader that turns the files into splits; `kind: model`
describes published weights in a `model:` section (architecture, preprocessing, published
accuracy), read by models/manifest.py; `kind: asset` lists files a shift reads (the frost
photographs), with no loader. All are fetched and verified by the same code (data/fetch.py)
into ROOT/NAME.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..core.config import parse_model, read_yaml
from ..core.errors import UserError
from ..core.names import check_name, is_name
from ..core.paths import project_root


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="path relative to the dataset's data folder")
    url: str | None = None
    mirrors: list[str] = Field(default_factory=list, description="other URLs serving the same bytes, tried in order")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    md5: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="where only an md5 is published")
    sha256_prefix: str | None = Field(None, pattern=r"^[0-9a-f]{8,63}$",
                                      description="where only the start of the sha256 is published (torch.hub "
                                                  "style file names): a weaker check than a full sha256")
    size: int | None = Field(None, ge=0)
    extract: bool = Field(False, description="unpack this archive (tar, tar.gz, zip) into the data folder after verifying")

    @field_validator("sha256", "md5", "sha256_prefix", mode="before")
    @classmethod
    def _hex_string(cls, v):
        if v is not None and not isinstance(v, str):  # YAML reads an all-digit hash as a number
            raise ValueError("a hash must be a quoted string of lowercase hex digits")
        return v


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["data", "model", "asset"] = Field(
        "data", description="data: a loader builds splits from the files; model: published weights; "
                            "asset: files a shift reads (no loader)")
    loader: str | None = Field(None, description="registered loader that builds the splits (kind: data)")
    description: str = ""
    license: str = ""
    citation: str = ""
    homepage: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    root: str | None = Field(None, description="folder inside the data folder that holds what the loader reads")
    files: list[ManifestFile] = Field(default_factory=list)
    sha256: str | None = Field(None, description="sha256 of the built splits, for datasets generated from a package")
    class_names: list[str] | None = Field(None, description="readable class names in the loader's class order "
                                                            "(text prompts of zero-shot heads; models/zero_shot.py)")
    model: dict[str, Any] | None = Field(None, description="kind: model: what the weights are (models/manifest.py)")

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind == "data" and not self.loader:
            raise ValueError("a data manifest needs 'loader' (or 'kind: model' with a 'model' section)")
        if self.kind == "model" and self.model is None:
            raise ValueError("a model manifest needs a 'model' section (arch, preprocessing, ...)")
        if self.kind in ("model", "asset") and self.loader:
            raise ValueError(f"a{'n' if self.kind == 'asset' else ''} {self.kind} manifest has no loader "
                             "(no splits are built from it)")
        return self

    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        """The file this manifest was read from (for messages)."""
        return self._source or f"data_manifests/{self.name}.yaml"

    @property
    def downloadable(self) -> bool:
        """Whether `shiftbench data fetch` can download it (ImageNet, or a view of another set's files, cannot)."""
        return any(f.url for f in self.files)


def manifests_dir() -> Path:
    return project_root() / "data_manifests"


def load_manifest(name_or_path: str | Path, *, referrer: str | None = None, field: str = "dataset") -> Manifest:
    """The manifest called name (data_manifests/NAME.yaml), or the file at a Path; referrer: the file that
    named it (in its `field`).

    A name is a name, never a path; the manifest's own `name` must equal its file's name, since
    the dataset's folder under the data root is called by it.
    """
    if isinstance(name_or_path, Path):
        path = name_or_path
    else:
        check_name(name_or_path, "a dataset", source=referrer, field=field if referrer else None)
        path = manifests_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            known = ", ".join(p.stem for p in sorted(manifests_dir().glob("*.yaml"))) or "none"
            raise UserError(f"no data manifest '{name_or_path}'; known: {known}",
                            source=referrer or str(path), field=field if referrer else None)
    manifest = parse_model(Manifest, read_yaml(path), str(path))
    if not is_name(manifest.name) or manifest.name != path.stem:
        raise UserError(f"must equal the file's name '{path.stem}' and be a name (lowercase letters, digits, "
                        f"'_', '.', '-'); got {manifest.name[:100]!r}", source=str(path), field="name")
    manifest._source = str(path)
    return manifest


def all_manifests() -> list[Manifest]:
    folder = manifests_dir()
    return [load_manifest(p) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
