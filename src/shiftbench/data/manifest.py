"""Data manifests (data_manifests/NAME.yaml): where a dataset, or an asset a shift reads, comes from, with
sha256 of each file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import UserError
from ..paths import project_root


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="path relative to the dataset's data folder")
    url: str | None = None
    mirrors: list[str] = Field(default_factory=list, description="other URLs serving the same bytes, tried in order")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    md5: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="where only an md5 is published")
    size: int | None = Field(None, ge=0)
    extract: bool = Field(False, description="unpack this archive (tar, tar.gz, zip) into the data folder after verifying")

    @field_validator("sha256", "md5", mode="before")
    @classmethod
    def _hex_string(cls, v):
        if v is not None and not isinstance(v, str):  # YAML reads an all-digit hash as a number
            raise ValueError("a hash must be a quoted string of lowercase hex digits")
        return v


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["dataset", "asset"] = Field(
        "dataset", description="dataset: a loader builds splits from the files; asset: files a shift reads (no loader)")
    loader: str = Field("", description="registered loader that builds the splits (datasets only)")
    description: str = ""
    license: str = ""
    citation: str = ""
    homepage: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    root: str | None = Field(None, description="folder inside the data folder that holds what the loader reads")
    files: list[ManifestFile] = Field(default_factory=list)
    sha256: str | None = Field(None, description="sha256 of the built splits, for datasets generated from a package")

    @model_validator(mode="after")
    def _loader_for_datasets_only(self):
        if self.kind == "dataset" and not self.loader:
            raise ValueError("a dataset manifest needs a loader")
        if self.kind == "asset" and self.loader:
            raise ValueError("an asset manifest has no loader (no splits are built from it)")
        return self


def manifests_dir() -> Path:
    return project_root() / "data_manifests"


def load_manifest(name_or_path: str | Path) -> Manifest:
    path = Path(name_or_path)
    if not path.suffix:
        path = manifests_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(m.name for m in all_manifests()) or "none"
        raise UserError(f"no data manifest '{name_or_path}'; known: {known}", source=str(path))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"malformed YAML ({str(e).splitlines()[0]})", source=str(path)) from None
    try:
        return Manifest(**(raw or {}))
    except ValidationError as e:
        err = e.errors()[0]
        raise UserError(err["msg"], source=str(path), field=".".join(map(str, err["loc"]))) from None
    except TypeError:
        raise UserError("a manifest must be a YAML mapping", source=str(path)) from None


def all_manifests() -> list[Manifest]:
    folder = manifests_dir()
    return [load_manifest(p) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
