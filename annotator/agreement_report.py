"""The agreement page's figures: summaries of stored ``Agreement`` rows (as dicts) per reader, per
reader pair and per patient, and their distributions as inline SVG histograms. No Django: the
selector reads the rows in one query, this module only counts and draws.

Readers: the first reader drew the submitted layer (the annotator), the second approved it (the
reviewer). "Added" and "removed" are the reviewer's: lesions the approved layer has and the
submission lacks, and the reverse (``lesions_added``/``lesions_missed`` of the row).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from annotator.geometry import LABELS

READERS = "readers"  # Agreement.Kind.READERS: a blind double reading's reader-vs-reader pair

DICE_BINS = 10
HD95_BINS = 10
WIDTH, HEIGHT, PAD = 240, 90, 18


@dataclass
class Histogram:
    """Counts of ``values`` in ``bins`` equal bins over [lo, hi] (the last bin includes hi)."""

    lo: float
    hi: float
    counts: list[int]
    undefined: int = 0  # rows whose figure is undefined (one mask empty)

    @property
    def n(self) -> int:
        return sum(self.counts)


def histogram(values: Iterable[float | None], bins: int, lo: float, hi: float | None = None) -> Histogram:
    values = list(values)
    defined = [v for v in values if v is not None]
    undefined = len(values) - len(defined)
    if hi is None:
        hi = max(defined, default=0.0)
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in defined:
        i = int((v - lo) / (hi - lo) * bins)
        counts[min(max(i, 0), bins - 1)] += 1
    return Histogram(lo=lo, hi=hi, counts=counts, undefined=undefined)


def histogram_svg(h: Histogram, title: str, unit: str = "") -> str:
    """An inline SVG bar chart: one ``rect.bar`` per bin (``data-count``), axis ends labelled."""
    top = max(h.counts, default=0) or 1
    bar_w = (WIDTH - 2 * PAD) / len(h.counts)
    plot_h = HEIGHT - 2 * PAD
    parts = [
        f'<svg class="hist" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-n="{h.n}" data-undefined="{h.undefined}" '
        f'aria-label="{escape(title)}: {h.n} values">',
        f"<title>{escape(title)}</title>",
    ]
    step = (h.hi - h.lo) / len(h.counts)
    for i, count in enumerate(h.counts):
        bh = plot_h * count / top
        x = PAD + i * bar_w
        a, b = h.lo + i * step, h.lo + (i + 1) * step
        parts.append(
            f'<rect class="bar" data-count="{count}" x="{x:.1f}" y="{PAD + plot_h - bh:.1f}" '
            f'width="{max(bar_w - 1, 1):.1f}" height="{bh:.1f}"><title>{a:.3g}–{b:.3g}: {count}</title></rect>'
        )
    base = PAD + plot_h
    parts.append(f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}" stroke="currentColor"/>')
    suffix = f" {escape(unit)}" if unit else ""
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 4}" font-size="10">{h.lo:.3g}</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" font-size="10" text-anchor="end">{h.hi:.3g}{suffix}</text>')
    parts.append(f'<text x="{PAD}" y="12" font-size="10">max {top if any(h.counts) else 0}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


@dataclass
class Group:
    """The figures of one reader, pair or patient."""

    key: str
    rows: list[dict] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)

    def _defined(self, name: str) -> list[float]:
        return [r[name] for r in self.rows if r[name] is not None]

    @property
    def dice_median(self) -> float | None:
        return _median(self._defined("dice"))

    @property
    def dice_mean(self) -> float | None:
        return _mean(self._defined("dice"))

    @property
    def hd95_medians(self) -> list[tuple[float, str]]:
        """(median HD95, unit) per unit: millimetres and pixels are never pooled."""
        out = []
        for unit in self.units:
            values = [r["hd95"] for r in self.rows if r["unit"] == unit and r["hd95"] is not None]
            if values:
                out.append((statistics.median(values), unit))
        return out

    @property
    def hd95_undefined(self) -> int:
        return sum(1 for r in self.rows if r["hd95"] is None)

    @property
    def added(self) -> int:
        return sum(r["lesions_added"] for r in self.rows)

    @property
    def removed(self) -> int:
        return sum(r["lesions_missed"] for r in self.rows)

    @property
    def flips(self) -> int:
        return sum(r["label_flips"] for r in self.rows)

    @property
    def rounds_mean(self) -> float | None:
        return _mean([r["round"] for r in self.rows])

    @property
    def units(self) -> list[str]:
        return sorted({r["unit"] for r in self.rows})

    def dice_svg(self) -> str:
        return histogram_svg(histogram([r["dice"] for r in self.rows], DICE_BINS, 0.0, 1.0), f"Dice, {self.key}")

    def hd95_svgs(self) -> list[str]:
        """One HD95 histogram per unit (a dataset mixing spaced and unspaced images has both)."""
        return [
            histogram_svg(
                histogram([r["hd95"] for r in self.rows if r["unit"] == unit], HD95_BINS, 0.0),
                f"HD95 ({unit}), {self.key}",
                unit,
            )
            for unit in self.units
        ]


def _groups(rows: Iterable[dict], key) -> list[Group]:
    groups: dict[str, Group] = {}
    for row in rows:
        for k in key(row):
            groups.setdefault(k, Group(k)).rows.append(row)
    return [groups[k] for k in sorted(groups)]


def summarise(rows: list[dict]) -> dict:
    """Everything the page shows, from rows with the ``Agreement`` fields plus ``annotator_name``,
    ``reviewer_name`` (the two readers' usernames) and ``patient`` (code)."""
    # Blind double reading's reader-vs-reader pairs are their own table: they are not a reviewer's
    # changes, so they stay out of the added/removed, flip and round figures.
    readers = [row for row in rows if row.get("kind") == READERS]
    rows = [row for row in rows if row.get("kind") != READERS]
    confusion = {a: {b: 0 for b in LABELS} for a in LABELS}
    for row in rows:
        for a, line in (row["confusion"] or {}).items():
            for b, count in line.items():
                if a in confusion and b in confusion[a]:
                    confusion[a][b] += count
    rounds: dict[int, int] = defaultdict(int)
    for row in rows:
        rounds[row["round"]] += 1
    return {
        "all": Group("all readers", list(rows)),
        "as_annotator": _groups(rows, lambda r: [r["annotator_name"]]),
        "as_reviewer": _groups(rows, lambda r: [r["reviewer_name"]]),
        "pairs": _groups(rows, lambda r: [f"{r['annotator_name']} → {r['reviewer_name']}"]),
        "patients": _groups(rows, lambda r: [r["patient"]]),
        "readers": _groups(readers, lambda r: [f"{r['annotator_name']} ↔ {r['reviewer_name']}"]),
        "confusion": [(a, [confusion[a][b] for b in LABELS]) for a in LABELS],
        "labels": list(LABELS),
        "rounds": sorted(rounds.items()),
    }
