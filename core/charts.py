"""Small server-side SVG charts, so pages show volume and health without a JS library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: Sequence[int]


def stacked_bars(
    labels: Sequence[str], series: Sequence[Series], *, height: int = 160
) -> SafeString:
    """Return an SVG stacked bar chart with one bar per label and a legend."""
    count = max(len(labels), 1)
    bar, gap, left, bottom = 26, 8, 34, 22
    width = left + count * (bar + gap)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = max(max(totals, default=0), 1)
    scale = (height - bottom - 10) / top
    rects = []
    for index, label in enumerate(labels):
        x = left + index * (bar + gap)
        y = height - bottom
        for one in series:
            value = one.values[index]
            if not value:
                continue
            h = value * scale
            y -= h
            rects.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {} {}</title></rect>",
                    x,
                    f"{y:.1f}",
                    bar,
                    f"{h:.1f}",
                    one.color,
                    label,
                    value,
                    one.label,
                )
            )
        rects.append(
            format_html(
                '<text x="{}" y="{}" font-size="9" text-anchor="middle" fill="#666">{}</text>',
                x + bar / 2,
                height - 8,
                label,
            )
        )
    axis = format_html(
        '<text x="2" y="14" font-size="10" fill="#666">{}</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>',
        top,
        left - 4,
        height - bottom,
        width,
        height - bottom,
    )
    legend = format_html_join(
        "",
        '<span class="legend"><svg class="swatch" width="10" height="10" aria-hidden="true">'
        '<circle cx="5" cy="5" r="5" fill="{}"/></svg>{}</span>',
        ((s.color, s.label) for s in series),
    )
    return format_html(
        '<figure class="chart"><svg role="img" viewBox="0 0 {} {}" width="100%" height="{}" '
        'preserveAspectRatio="xMinYMid meet">{}{}</svg><figcaption>{}</figcaption></figure>',
        width,
        height,
        height,
        axis,
        SafeString("".join(rects)),
        legend,
    )
