"""The `stream:` block of a scenario: the evaluation setting its segments are played in.

  severities   gradual: every segment is played once per severity in this list, in order, with
               each of its shifts' `severity` replaced (e.g. [1, 2, 3, 4, 5, 4, 3, 2, 1])
  mix          all segments shuffled into one stream (seeded); each image keeps its segment
  label_order  {concentration, chunks}: a non-i.i.d. order by class (label_correlated_order),
               within each segment, or over the mixed stream when `mix` is on
  cycles       the whole stream played this many times in a row (a long stream)
  batch_size   the test batch size of this scenario (default: the benchmark's)
  window       images per window of the online error curve in each record
  seed_name    the name whose seeds draw the scenario's random shifts (default: its own name):
               scenarios that name the same one and list the same chains play the same images

The severities are resolved into explicit shift chains and everything else into the scenario's
resolved spec (ScenarioSpec.resolved), so a cell's key covers the whole stream it plays. The
image-level settings (mix, label_order, cycles) are applied by evaluation/stream_layout.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import UserError
from ..core.params import validate_params
from ..shifts import get_shift

LABEL_ORDER_SHIFT = "label_correlated_order"
DEFAULT_WINDOW = 1000


class StreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severities: list[int] | None = Field(None, min_length=1, description="gradual: severities each segment plays")
    mix: bool = Field(False, description="shuffle all segments into one stream")
    label_order: dict[str, Any] | None = Field(None, description="label_correlated_order parameters")
    cycles: int = Field(1, ge=1, le=1000, description="play the stream this many times")
    batch_size: int | None = Field(None, ge=1, description="test batch size (default: the benchmark's)")
    window: int = Field(DEFAULT_WINDOW, ge=1, description="images per window of the online error")
    seed_name: str | None = Field(None, min_length=1, description="name that seeds the random shifts")

    def played_chains(self, chains: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """The shift chains in the order they play: each chain once per severity of a gradual path."""
        if self.severities is None:
            return chains
        return [[{**spec, "severity": s} if "severity" in spec else spec for spec in chain]
                for chain in chains for s in self.severities]

    def layout(self) -> dict[str, Any]:
        """The settings that act on the built images (see evaluation/stream_layout.py)."""
        order = None if self.label_order is None else {"shift": LABEL_ORDER_SHIFT, **self.label_order}
        return {"mix": self.mix, "label_order": order, "cycles": self.cycles}


def check_stream_settings(settings: StreamSettings, chains: list[list[dict[str, Any]]], *, source: str) -> None:
    """Checks that need the scenario's (defaults-filled) chains; fills label_order's defaults in place."""
    if settings.severities is not None:
        lacking = [i for i, chain in enumerate(chains) if not any("severity" in spec for spec in chain)]
        if lacking:
            raise UserError(f"segment {lacking[0]} has no shift with a 'severity' parameter to vary",
                            source=source, field="stream.severities")
        for chain in settings.played_chains(chains):
            for spec in chain:
                params = {k: v for k, v in spec.items() if k != "shift"}
                validate_params(get_shift(spec["shift"]).fn, params, source=source, what=f"shift '{spec['shift']}'",
                                field="stream.severities")
    if settings.label_order is not None:
        settings.label_order = validate_params(get_shift(LABEL_ORDER_SHIFT).fn, settings.label_order, source=source,
                                               what=f"shift '{LABEL_ORDER_SHIFT}'", field="stream.label_order")
