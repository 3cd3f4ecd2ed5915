"""PNG charts for calibration reports: ECDF and Q-Q small multiples, and bar charts.

Figures are built with matplotlib's object-oriented API on the Agg canvas (no pyplot, no GUI,
no global figure registry to leak), and written atomically: to a temporary file in the target
folder, then renamed over the target.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

Panel = tuple[str, np.ndarray, Any]
"""(label, data, fitted distribution or None); the distribution needs ``cdf`` and ``ppf``."""

DPI = 80
PANEL_W, PANEL_H = 2.7, 2.2  # inches per small-multiple panel
MAX_SIDE_PX = 12000  # keeps a huge panel list within the Agg canvas limits


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to ``path`` as PNG atomically; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; charts are meant to be shared
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        fig.clear()
    return out


def _grid(n: int, ncols: int, title: str) -> tuple[Figure, list[Any]]:
    ncols = max(1, min(ncols, max(n, 1)))
    nrows = max(1, math.ceil(n / ncols))
    top_in = 0.45 + (0.4 if title else 0.0)  # fixed margins (inches): constrained layout is slow
    width, height = PANEL_W * ncols, PANEL_H * nrows + top_in
    shrink = min(1.0, MAX_SIDE_PX / (max(width, height) * DPI))
    fig = Figure(figsize=(width * shrink, height * shrink))
    fig.subplots_adjust(
        left=0.45 / width,
        right=1 - 0.1 / width,
        bottom=0.4 / height,
        top=1 - top_in / height,
        wspace=0.35,
        hspace=0.75,
    )
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel())
    for ax in axes[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, y=1 - 0.15 / height, va="top")
    if n == 0:
        axes[0].text(0.5, 0.5, "no data", ha="center", va="center", transform=axes[0].transAxes)
    return fig, axes


def _panel_title(label: str, x: np.ndarray, dist: Any) -> str:
    fam = getattr(dist, "kind", None) if dist is not None else None
    return f"{label}\nn={x.size}" + (f" {fam}" if fam else "")


def _style(ax: Any, title: str) -> None:
    # an explicit title y skips matplotlib's slow automatic title placement
    ax.set_title(title, fontsize=7, y=1.0, pad=3)
    ax.tick_params(labelsize=6)
    ax.xaxis.set_major_locator(MaxNLocator(4))


def _finite(data: Any) -> np.ndarray:
    x = np.asarray(data, dtype=float).ravel()
    return np.sort(x[np.isfinite(x)])


def ecdf_panels(
    path: str | os.PathLike[str],
    panels: Sequence[Panel],
    xlabel: str = "minutes",
    ncols: int = 4,
    title: str = "",
) -> Path:
    """Small multiples of each sample's ECDF (steps) against its fitted CDF (line)."""
    fig, axes = _grid(len(panels), ncols, title)
    for ax, (label, data, dist) in zip(axes, panels, strict=False):
        x = _finite(data)
        _style(ax, _panel_title(label, x, dist))
        ax.set_xlabel(xlabel, fontsize=6)
        ax.set_yticks([0.0, 0.5, 1.0])
        if x.size == 0:
            continue
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", lw=1, color="0.3")
        if dist is not None:
            lo, hi = float(x[0]), float(x[-1])
            pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
            grid = np.linspace(max(lo - pad, 0.0), hi + pad, 200)
            ax.plot(grid, np.asarray(dist.cdf(grid), dtype=float), lw=1.2, color="tab:red")
        ax.set_ylim(0, 1.02)
    return _save(fig, path)


def qq_panels(
    path: str | os.PathLike[str],
    panels: Sequence[Panel],
    ncols: int = 4,
    title: str = "",
) -> Path:
    """Small multiples of data quantiles against fitted quantiles, with the y = x line."""
    fig, axes = _grid(len(panels), ncols, title)
    for ax, (label, data, dist) in zip(axes, panels, strict=False):
        x = _finite(data)
        _style(ax, _panel_title(label, x, dist))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        if x.size == 0 or dist is None:
            continue
        q = np.asarray(dist.ppf((np.arange(x.size) + 0.5) / x.size), dtype=float)
        ax.plot(q, x, ".", ms=2, color="0.3")
        lo, hi = float(min(q.min(), x[0])), float(max(q.max(), x[-1]))
        ax.plot([lo, hi], [lo, hi], lw=1, color="tab:red")
        ax.set_xlabel("fitted", fontsize=6)
        ax.set_ylabel("observed", fontsize=6)
    return _save(fig, path)


def bar_chart(
    path: str | os.PathLike[str],
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    ylabel: str,
    fitted: Sequence[float] | None = None,
) -> Path:
    """Observed values as bars, with optional fitted values as points (e.g. arrivals by hour)."""
    if len(labels) != len(values) or (fitted is not None and len(fitted) != len(values)):
        raise ValueError("labels, values (and fitted) must have the same length")
    fig = Figure(figsize=(max(5.0, 0.35 * len(labels) + 1.5), 3.5), layout="constrained")
    ax = fig.subplots()
    pos = np.arange(len(labels))
    ax.bar(pos, values, color="0.6", label="observed")
    if fitted is not None:
        ax.plot(pos, fitted, "o-", color="tab:red", ms=4, lw=1, label="fitted")
        ax.legend(fontsize=7)
    ax.set_xticks(pos, [str(s) for s in labels], fontsize=7, rotation=90 if len(labels) > 24 else 0)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _save(fig, path)
