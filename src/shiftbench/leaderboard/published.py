"""Published reference numbers (leaderboard/published/*.yaml), shown beside ours as rows marked "published".

One file is one table of one paper (or official code release) in one setting:

    citation: Wang, Shelhamer, Liu, Olshausen, Darrell. Tent: Fully Test-Time Adaptation by Entropy Minimization. ICLR 2021.
    source: where the numbers are printed (table, README section)
    url: https://...
    benchmark: cifar10                 # the board of ours the numbers belong beside
    model: {name: WRN-28-10, checkpoint_sha256: ...}   # name = a model manifest name (weights:) or our label
    setting: {protocol: per_scenario, severity: 5, batch_size: 200, notes: ...}
    metric: error                      # what the numbers are, in percent
    rows:
      - {method: tent, label: TENT, values: {gaussian_noise: 24.8, ..., mean: 18.6}}

Covariate tables (corruption x method at one severity) join the severity table of the covariate
board; natural tables (`family: natural`, values by scenario name, e.g. imagenet-v2,
imagenet-r; no severity) join the accuracy table of the natural board. A row matches our
measured entries of the same method on the same model (checkpoint sha256, else the manifest
name) in the same protocol; the board then shows ours minus published. With no measured run
of that model, the numbers get a board of their own (published only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.config import parse_model, read_yaml
from ..core.paths import project_root


class PublishedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    checkpoint_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    description: str = ""


class Setting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: Literal["episodic", "per_scenario", "continual"]
    severity: int | None = Field(None, ge=1, le=5, description="covariate tables: their corruptions' severity")
    batch_size: int | None = Field(None, ge=1)
    notes: str = ""


class PublishedRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=1, description="our method name, to match our entries")
    label: str = Field(min_length=1)
    params: dict[str, Any] | None = Field(None, description="our method's parameters, when only some entries match")
    values: dict[str, float] = Field(min_length=1, description="corruption (covariate) or scenario (natural) -> "
                                                               "number in percent; 'mean' optional")


class Published(BaseModel):
    model_config = ConfigDict(extra="forbid")
    citation: str = Field(min_length=1)
    source: str = ""
    url: str | None = None
    benchmark: str = Field(min_length=1)
    family: Literal["covariate", "natural"] = "covariate"
    model: PublishedModel
    setting: Setting
    metric: Literal["error", "accuracy"] = "error"
    rows: list[PublishedRow] = Field(min_length=1)
    path: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _severity_for_covariate(self):
        if self.family == "covariate" and self.setting.severity is None:
            raise ValueError("a covariate table needs setting.severity (the severity of its corruptions)")
        return self

    @property
    def shown_metric(self) -> str:
        """What the board table it joins shows: error (covariate) or accuracy (natural)."""
        return "error" if self.family == "covariate" else "accuracy"

    def fraction(self, row: PublishedRow, column: str) -> float | None:
        """A published value as a fraction of the metric the board shows."""
        if column not in row.values:
            return None
        v = row.values[column] / 100
        return v if self.metric == self.shown_metric else 1 - v


def published_dir() -> Path:
    return project_root() / "leaderboard" / "published"


def load_published(folder: Path | None = None) -> list[Published]:
    """Every file in the folder, validated; a bad file stops the build with one line naming it and the field."""
    folder = published_dir() if folder is None else Path(folder)
    out = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        item = parse_model(Published, read_yaml(path), str(path))
        item.path = str(path)
        out.append(item)
    return out
