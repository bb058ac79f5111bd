"""Figures (already suppressed) as an SVG bar chart for the web app: one bar per stratum of one
stratifier, for one figure (a count, the closure rate or a time in hours).

Hand-written rather than a plotting library: a labelled bar chart is a few dozen lines of SVG,
while matplotlib would add tens of megabytes to the image and a font cache to every process
for it. Labels are XML-escaped (strata are data: organization ids, codes); a suppressed bar is
drawn as a hatched stub marked "suppressed", never as zero.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from referral_api.measures.compute import COUNTS, DURATIONS, STATS, Cell, Figures
from referral_api.measures.report import label

FIGURES = [*COUNTS, "closure-rate", *(f"time-to-{d}.{s}" for d in DURATIONS for s in STATS)]
WIDTH, BAR, GAP, LEFT, TOP = 720, 22, 8, 220, 40


def value_of(cell: Cell, figure: str) -> float | None:
    if figure == "closure-rate":
        return cell.rate
    if figure.startswith("time-to-"):
        seconds = cell.times.get(figure.removeprefix("time-to-"))
        return None if seconds is None else seconds / 3600
    count = cell.counts[figure]
    return None if count is None else float(count)


def _fmt(value: float, figure: str) -> str:
    if figure == "closure-rate":
        return f"{value:.0%}"
    if figure.startswith("time-to-"):
        return f"{value:.1f} h"
    return f"{value:.0f}"


def bar_chart(figures: Figures, figure: str, by: str, title: str) -> str:
    cells = sorted(figures.strata.get(by, {}).items(), key=lambda kv: label(kv[0]))
    values = [value_of(cell, figure) for _, cell in cells]
    top = max([v for v in values if v is not None] + [0.0])
    span = WIDTH - LEFT - 80
    height = TOP + len(cells) * (BAR + GAP) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">',
        f"<title>{escape(title)}</title>",
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="2" height="6" fill="#999"/></pattern></defs>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for i, ((key, _cell), value) in enumerate(zip(cells, values, strict=True)):
        y = TOP + i * (BAR + GAP)
        name = label(key)
        short = name if len(name) <= 32 else name[:31] + "…"
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + BAR * 0.7:.1f}" text-anchor="end">{escape(short)}</text>'
        )
        if value is None:
            parts.append(
                f'<rect x="{LEFT}" y="{y}" width="40" height="{BAR}" fill="url(#hatch)"/>'
                f'<text x="{LEFT + 48}" y="{y + BAR * 0.7:.1f}" fill="#666">suppressed</text>'
            )
            continue
        width = span * value / top if top else 0.0
        parts.append(
            f'<rect x="{LEFT}" y="{y}" width="{width:.1f}" height="{BAR}" fill="#2b6cb0"/>'
            f'<text x="{LEFT + width + 6:.1f}" y="{y + BAR * 0.7:.1f}">'
            f"{escape(_fmt(value, figure))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
