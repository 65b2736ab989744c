"""Small server-side SVG charts, so pages show volume and health without a JS library.

The SVG carries no style attribute (the Content-Security-Policy refuses inline styles): text,
grid and axis take their colours from classes in static/portal/portal.css, which follow the
admin's light and dark themes; only the series' fills are presentation attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

FONT_SIZE = 11
# An upper bound of a glyph's advance in ems in the admin's sans-serif fonts (digits are about
# 0.56-0.64, capitals up to 0.86): label spacing is computed from it, so it errs on the wide side.
CHAR_EM = 0.72
LABEL_GAP = 6


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: Sequence[int]


@dataclass(frozen=True)
class XAxisLayout:
    """Which labels of the x axis are drawn, and whether they stand upright."""

    step: int
    rotated: bool
    label_width: float


def text_width(text: str, font_size: float = FONT_SIZE) -> float:
    """Return a generous estimate of the text's width in the chart's units."""
    return len(text) * font_size * CHAR_EM


def nice_ticks(top: int, most: int = 5) -> list[int]:
    """Return round tick values from 0 to at least top, at most `most` intervals."""
    if top <= 0:
        return [0, 1]
    raw = top / most
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    count = math.ceil(top / step)
    return [i * step for i in range(count + 1)]


def x_axis_layout(labels: Sequence[str], band: float) -> XAxisLayout:
    """Return every k-th label so that none overlaps its neighbour; stand them up if too few."""
    count = len(labels)
    widest = max((text_width(label) for label in labels), default=0.0)
    step = max(1, math.ceil((widest + LABEL_GAP) / band)) if band > 0 else count
    if count <= 3 or math.ceil(count / step) >= 4:
        return XAxisLayout(step=step, rotated=False, label_width=widest)
    # Upright text needs only its line height across the axis.
    upright = max(1, math.ceil((FONT_SIZE + LABEL_GAP) / band)) if band > 0 else count
    return XAxisLayout(step=upright, rotated=True, label_width=widest)


def labelled_indexes(count: int, step: int) -> list[int]:
    """Return the indexes of the labels drawn: the last one (today) and every step-th before."""
    return [i for i in range(count) if (count - 1 - i) % step == 0]


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool = True,
    width: int = 640,
    height: int = 200,
) -> SafeString:
    """Return an accessible SVG bar chart (stacked or side by side) with a legend and a table.

    Each bar carries a <title> for its tooltip; screen readers get the title as the picture's
    name and the figures in a visually hidden table.
    """
    count = max(len(labels), 1)
    if stacked:
        heights = [sum(s.values[i] for s in series) for i in range(len(labels))]
    else:
        heights = [max((s.values[i] for s in series), default=0) for i in range(len(labels))]
    ticks = nice_ticks(max(heights, default=0))
    axis_top = ticks[-1]
    left = max(text_width(str(tick)) for tick in ticks) + 10
    right, top_pad = 8, 10
    band = (width - left - right) / count
    layout = x_axis_layout(labels, band)
    bottom = (layout.label_width + 10) if layout.rotated else FONT_SIZE + 12
    plot_bottom = height - bottom
    scale = (plot_bottom - top_pad) / axis_top

    parts: list[SafeString] = []
    for tick in ticks:
        y = plot_bottom - tick * scale
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="chart-label y-label" x="{}" y="{}" font-size="{}" '
                'text-anchor="end" dominant-baseline="middle">{}</text>',
                f"{left:.1f}",
                f"{y:.1f}",
                width - right,
                f"{y:.1f}",
                f"{left - 5:.1f}",
                f"{y:.1f}",
                FONT_SIZE,
                tick,
            )
        )
    bar = band * 0.72
    inner = bar / max(len(series), 1)
    for index, label in enumerate(labels):
        x = left + index * band + (band - bar) / 2
        y = plot_bottom
        for number, one in enumerate(series):
            value = one.values[index]
            if not value:
                continue
            h = value * scale
            if stacked:
                y -= h
                bx, by, bw = x, y, bar
            else:
                bx, by, bw = x + number * inner, plot_bottom - h, inner
            parts.append(
                format_html(
                    '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {} {}</title></rect>",
                    f"{bx:.1f}",
                    f"{by:.1f}",
                    f"{bw:.1f}",
                    f"{h:.1f}",
                    one.color,
                    label,
                    value,
                    one.label,
                )
            )
    center = [left + i * band + band / 2 for i in range(len(labels))]
    for index in labelled_indexes(len(labels), layout.step):
        if layout.rotated:
            parts.append(
                format_html(
                    '<text class="chart-label x-label" x="{}" y="{}" font-size="{}" '
                    'text-anchor="end" dominant-baseline="middle" '
                    'transform="rotate(-90 {} {})">{}</text>',
                    f"{center[index]:.1f}",
                    plot_bottom + 5,
                    FONT_SIZE,
                    f"{center[index]:.1f}",
                    plot_bottom + 5,
                    labels[index],
                )
            )
        else:
            parts.append(
                format_html(
                    '<text class="chart-label x-label" x="{}" y="{}" font-size="{}" '
                    'text-anchor="middle">{}</text>',
                    f"{center[index]:.1f}",
                    plot_bottom + FONT_SIZE + 6,
                    FONT_SIZE,
                    labels[index],
                )
            )
    parts.append(
        format_html(
            '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
            f"{left:.1f}",
            plot_bottom,
            width - right,
            plot_bottom,
        )
    )
    legend = format_html_join(
        "",
        '<span class="legend"><svg class="swatch" width="10" height="10" aria-hidden="true">'
        '<circle cx="5" cy="5" r="5" fill="{}"/></svg>{}</span>',
        ((s.color, s.label) for s in series),
    )
    return format_html(
        '<figure class="chart"><svg class="chart-plot" role="img" aria-label="{}" '
        'viewBox="0 0 {} {}" width="{}" height="{}" preserveAspectRatio="xMinYMin meet">{}</svg>'
        "<figcaption>{}</figcaption>{}</figure>",
        title,
        width,
        height,
        width,
        height,
        SafeString("".join(parts)),
        legend,
        _figures_table(labels, series, title=title),
    )


def _figures_table(labels: Sequence[str], series: Sequence[Series], *, title: str) -> SafeString:
    head = format_html_join("", '<th scope="col">{}</th>', ((s.label,) for s in series))
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (
                label,
                format_html_join("", "<td>{}</td>", ((s.values[i],) for s in series)),
            )
            for i, label in enumerate(labels)
        ),
    )
    return format_html(
        '<table class="visually-hidden chart-figures"><caption>{}</caption>'
        '<thead><tr><th scope="col">{}</th>{}</tr></thead><tbody>{}</tbody></table>',
        title,
        _("Day"),
        head,
        rows,
    )
