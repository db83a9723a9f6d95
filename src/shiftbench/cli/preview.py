"""`shiftbench shifts preview`: a grid of test images under every corruption and severity.

Rows are corruptions, columns the clean images then severities 1-5; each cell shows the same
few test images side by side, cropped to what the model sees, so a person can check at a
glance that each corruption looks like its name. A corruption whose files are not on disk
(frost without its photographs) is drawn as labelled grey stripes and named in one warning
line, so the preview works offline.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from ..core.errors import MissingData, UserError, warn

FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def strip(images: torch.Tensor, gap: int = 2) -> torch.Tensor:
    """(n, C, H, W) uint8 -> (H, n*W + gaps, C) uint8, white gaps between images."""
    n, c, h, w = images.shape
    out = torch.full((c, h, n * w + (n - 1) * gap), 255, dtype=torch.uint8)
    for i in range(n):
        out[:, :, i * (w + gap) : i * (w + gap) + w] = images[i]
    return out.permute(1, 2, 0)


def placeholder(shape: tuple[int, ...]) -> torch.Tensor:
    """A (H, W, C) uint8 cell of grey diagonal stripes: where a shift whose files are missing would be."""
    h, w, c = shape
    stripes = ((torch.arange(h)[:, None] + torch.arange(w)) // 3) % 2
    return torch.where(stripes.bool(), 150, 210).to(torch.uint8)[..., None].expand(h, w, c).clone()


def corruption_grid(data, names: list[str], seed: int = 0) -> tuple[list[tuple[str, list[torch.Tensor]]], dict]:
    """([(name, [clean strip, severity 1..5 strips])], {name: MissingData}) for an ImageSet of a few
    images. A shift whose files are not on disk gets placeholder cells, and its error in the dict."""
    from ..shifts import get_shift

    clean = strip(data.model_view().images)
    rows, missing = [], {}
    for name in names:
        fn = get_shift(name).fn
        try:
            cells = [strip(fn(data, seed=seed, severity=s).model_view().images) for s in range(1, 6)]
        except MissingData as e:
            missing[name] = e
            cells = [placeholder(clean.shape)] * 5
        rows.append((name, [clean] + cells))
    return rows, missing


def tile(rows, gap: int = 6) -> tuple[torch.Tensor, list[float], list[float]]:
    """One (H, W, C) uint8 mosaic of the grid, with the centres of its columns and rows."""
    cell_h, cell_w, c = rows[0][1][0].shape
    cols = len(rows[0][1])
    out = torch.full((len(rows) * (cell_h + gap) - gap, cols * (cell_w + gap) - gap, c), 255, dtype=torch.uint8)
    for r, (_, cells) in enumerate(rows):
        for k, cell in enumerate(cells):
            out[r * (cell_h + gap) : r * (cell_h + gap) + cell_h, k * (cell_w + gap) : k * (cell_w + gap) + cell_w] = cell
    xs = [k * (cell_w + gap) + (cell_w - 1) / 2 for k in range(cols)]
    ys = [r * (cell_h + gap) + (cell_h - 1) / 2 for r in range(len(rows))]
    return out, xs, ys


def missing_line(missing: dict) -> str:
    """One line naming the shifts drawn as placeholders and the command that fetches their files."""
    by_manifest: dict[str, list[str]] = {}
    for name, e in missing.items():
        by_manifest.setdefault(e.manifest, []).append(name)
    return "preview: drawn as placeholders, their files are not on disk: " + "; ".join(
        f"{', '.join(names)} (`shiftbench data fetch {manifest}`)" for manifest, names in by_manifest.items())


def figure(rows, missing: dict, title: str):
    """The grid as a matplotlib Figure: column and row labels, and a label over each placeholder row."""
    from matplotlib.figure import Figure

    mosaic, centres_x, centres_y = tile(rows)
    height, width = mosaic.shape[:2]
    scale = max(1.0, 1200 / width)  # small images are drawn bigger
    fig = Figure(figsize=(width * scale / 100 + 1.6, height * scale / 100 + 0.6), dpi=100)
    ax = fig.add_axes((1.4 / (width * scale / 100 + 1.6), 0.02, 1 - 1.5 / (width * scale / 100 + 1.6),
                       1 - 0.5 / (height * scale / 100 + 0.6)))
    if mosaic.shape[-1] == 1:
        ax.imshow(mosaic[..., 0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(mosaic.numpy(), interpolation="nearest")
    ax.xaxis.tick_top()
    ax.set_xticks(centres_x, ["clean"] + [f"severity {s}" for s in range(1, 6)], fontsize=9)
    ax.set_yticks(centres_y, [name for name, _ in rows], fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    for r, (name, _) in enumerate(rows):
        if name in missing:
            ax.text(sum(centres_x[1:]) / 5, centres_y[r],
                    f"{name}: files not on disk, run `shiftbench data fetch {missing[name].manifest}`",
                    ha="center", va="center", fontsize=8, bbox=dict(facecolor="white", edgecolor="none", pad=1))
    ax.set_title(title, fontsize=10, pad=18)
    return fig


def draw_preview(benchmark: str, out: Path, n: int = 4, seed: int = 0) -> Path:
    from ..data import load_dataset
    from ..run.benchmark import load_benchmark
    from ..shifts import all_shifts
    from ..shifts.corruption import CORRUPTIONS

    if n < 1 or n > 32:
        raise UserError(f"--n must be between 1 and 32, got {n}", field="--n")
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out must end in one of {', '.join(FORMATS)}, got '{out.name}'", field="--out")
    bench = load_benchmark(benchmark)
    test = load_dataset(bench.dataset).test
    pick = torch.linspace(0, len(test) - 1, min(n, len(test))).round().long()
    all_shifts()
    rows, missing = corruption_grid(test.subset(pick), sorted(CORRUPTIONS), seed)
    fig = figure(rows, missing, f"{bench.name}: corruptions by severity (seed {seed})")

    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if missing:
        warn(missing_line(missing))
    return out
