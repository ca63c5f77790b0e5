"""What every figure shares: the Agg backend, colours, captions, saving, and the result record.

Import this module (not ``matplotlib.pyplot`` directly) first in every figure module: it
selects the non-interactive Agg backend before pyplot is imported, so the gallery draws
on machines without a display.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed, same pixels everywhere

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "DPI",
    "MINIREG",
    "TORCH",
    "FigureResult",
    "MissingDependency",
    "NeedsTorch",
    "available",
    "caption",
    "color",
    "finish",
    "floor_for_log",
    "gap_clause",
    "legend_outside",
    "max_abs_gap",
    "moving_average",
    "optional_torch",
    "plt",
    "require",
    "save",
    "timed",
    "torch_note",
]

DPI = 80  # modest: the README embeds these PNGs at small size
FLOOR = 1e-18  # |Δ| = 0 (bitwise agreement) is drawn here on log axes

# One look for "minireg" and one for "torch", used by every comparison figure.
MINIREG: dict[str, Any] = {"linestyle": "-", "linewidth": 1.6}
TORCH: dict[str, Any] = {"linestyle": "--", "linewidth": 1.2}

_CYCLE: list[str] = [  # matplotlib's "tab10"
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip

plt.rcParams.update(
    {
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 7.5,
        "legend.framealpha": 0.85,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "axes.grid": True,
        "grid.alpha": 0.25,
        "image.cmap": "viridis",
    }
)


def color(index: int) -> str:
    """The ``index``-th colour of the shared qualitative palette."""
    return _CYCLE[index % len(_CYCLE)]


class MissingDependency(RuntimeError):
    """A minireg component this figure draws is not importable (yet)."""


class NeedsTorch(RuntimeError):
    """The figure cannot draw anything meaningful without torch."""


@dataclass
class FigureResult:
    """What a figure function returns: where it wrote, and how well minireg matched torch.

    ``gap`` is the worst ``|minireg - torch|`` the figure shows (``None`` when it compares
    nothing, or torch is missing); ``tolerance`` is the bound the tests hold it to.
    """

    name: str
    paths: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    gap: float | None = None
    tolerance: float | None = None
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add_gap(self, value: float) -> None:
        """Fold one more measured gap into the figure's worst gap."""
        value = float(value)
        self.gap = value if self.gap is None or not (value <= self.gap) else self.gap


def optional_torch() -> Any:
    """``torch`` if it is installed, else ``None`` (figures then draw minireg alone)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def require(dotted: str) -> Any:
    """The module or object at a ``"minireg.optim.Adam"``-style path, or
    :class:`MissingDependency`."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        pass
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise MissingDependency(f"{dotted} is not available ({exc})") from exc


def available(dotted: str) -> bool:
    """Whether :func:`require` would succeed."""
    try:
        require(dotted)
    except MissingDependency:
        return False
    return True


def max_abs_gap(ours: Any, theirs: Any) -> float:
    """``max |ours - theirs|`` over matching arrays (0 for empty input; NaN-aware)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.size == 0:
        return 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    return float(np.max(diff)) if not np.isnan(diff).any() else float("nan")


def floor_for_log(values: Any) -> np.ndarray:
    """Values for a log axis: exact zeros (bitwise agreement) drawn at :data:`FLOOR`."""
    return np.maximum(np.asarray(values, dtype=np.float64), FLOOR)


def moving_average(values: Any, width: int = 20) -> np.ndarray:
    """Trailing moving average over ``width`` steps (over fewer at the start)."""
    c = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    i = np.arange(1, len(c))
    lo = np.maximum(i - width, 0)
    return (c[i] - c[lo]) / (i - lo)


def caption(fig: Any, text: str, y: float = 0.005) -> None:
    """The one-line caption under a figure that names the technique (and its source)."""
    fig.text(0.5, y, text, ha="center", va="bottom", fontsize=8, style="italic", wrap=True)


def torch_note(torch: ModuleType | None, ours: str = "solid", theirs: str = "dashed") -> str:
    """The caption's comparison clause: how minireg's and torch's marks look."""
    if torch is None:
        return "torch not installed: minireg only"
    return f"minireg {ours}, torch {torch.__version__.split('+')[0]} {theirs}"


def save(fig: Any, out_dir: Path, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name.png`` and close it.

    The PNG is stored with a 256-colour palette (octree quantisation, no dithering):
    plots use few colours, so it looks the same at about a third of the size, which
    matters for PNGs committed next to the README.  No timestamp: the bytes are stable.
    """
    from PIL import Image  # matplotlib's own dependency

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.set_dpi(DPI)
    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    palette = rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette.save(path, optimize=True)
    plt.close(fig)
    return path


def gap_clause(result: FigureResult, what: str) -> str:
    """``"; <what>: <gap>"`` for a figure's title, or ``""`` when nothing was compared."""
    return "" if result.gap is None else f"; {what}: {result.gap:.1e}"


def finish(
    fig: Any,
    result: FigureResult,
    out_dir: Path,
    title: str,
    text: str,
    *,
    title_size: float = 11,
    caption_y: float = 0.005,
) -> None:
    """The last steps of every figure: ``title`` on top, caption ``text`` below, then save.

    The PNG is written as ``out_dir/<result.name>.png`` and its path added to ``result``.
    """
    fig.suptitle(title, fontsize=title_size)
    caption(fig, text, y=caption_y)
    result.paths.append(save(fig, out_dir, result.name))


@contextmanager
def timed(result: FigureResult) -> Iterator[FigureResult]:
    """Add the wall time of the ``with`` body to ``result.seconds``."""
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds += time.perf_counter() - start


def legend_outside(ax: Any, handles: Sequence[Any] | None = None, **kwargs: Any) -> None:
    """A legend to the right of ``ax``."""
    if handles is None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)
    else:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            **kwargs,
        )
