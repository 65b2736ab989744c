"""The server-side SVG charts: round ticks, day labels spaced apart, nothing a CSP refuses."""

from __future__ import annotations

import itertools
import re

import pytest

from core.charts import (
    FONT_SIZE,
    Series,
    labelled_indexes,
    nice_ticks,
    stacked_bars,
    text_width,
    x_axis_layout,
)


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (0, [0, 1]),
        (3, [0, 1, 2, 3]),
        (10, [0, 2, 4, 6, 8, 10]),
        (11, [0, 5, 10, 15]),
        (133, [0, 50, 100, 150]),
        (980, [0, 200, 400, 600, 800, 1000]),
    ],
)
def test_the_value_axis_has_a_few_round_ticks_reaching_the_top(top: int, ticks: list[int]) -> None:
    assert nice_ticks(top) == ticks


def _x_labels(svg: str) -> list[tuple[float, str, bool]]:
    found = re.findall(
        r'<text class="chart-label x-label" x="([\d.]+)"[^>]*?(transform="[^"]*")?>([^<]*)<', svg
    )
    return [(float(x), text, bool(rotated)) for x, rotated, text in found]


def test_fourteen_day_labels_are_spaced_by_their_width_with_today_always_labelled() -> None:
    labels = [f"{day} Nov" for day in range(17, 31)]
    svg = str(stacked_bars(labels, [Series("in", "#417690", [1] * 14)], title="Volume"))
    drawn = _x_labels(svg)
    assert 4 <= len(drawn) < 14
    assert drawn[-1][1] == "30 Nov"
    widest = max(text_width(label) for label in labels)
    for (x1, _, rotated), (x2, _, _) in itertools.pairwise(drawn):
        assert not rotated
        assert x2 - x1 >= widest  # centred labels: half of each on either side


def test_labels_stand_upright_when_too_few_would_fit_side_by_side() -> None:
    labels = [f"{day} September" for day in range(1, 31)]
    svg = str(stacked_bars(labels, [Series("in", "#417690", [2] * 30)], title="Month", width=320))
    drawn = _x_labels(svg)
    assert drawn and all(rotated for _, _, rotated in drawn)
    for (x1, _, _), (x2, _, _) in itertools.pairwise(drawn):
        assert x2 - x1 >= FONT_SIZE


def test_every_label_is_drawn_when_there_is_room() -> None:
    layout = x_axis_layout(["1", "2", "3", "4", "5"], band=40)
    assert layout.step == 1 and not layout.rotated
    assert labelled_indexes(5, 1) == [0, 1, 2, 3, 4]
    assert labelled_indexes(14, 3) == [1, 4, 7, 10, 13]


def test_a_chart_is_an_accessible_picture_with_tooltips_and_no_inline_style() -> None:
    svg = str(
        stacked_bars(
            ["1 Dec", "2 Dec"],
            [Series("received", "#417690", [3, 0]), Series("sent <b>", "#70bf2b", [1, 2])],
            title="Messages & more",
            stacked=False,
        )
    )
    assert 'role="img"' in svg and 'aria-label="Messages &amp; more"' in svg
    assert svg.count("<rect") == 3  # no bar for a zero
    assert "<title>1 Dec: 3 received</title>" in svg
    assert "sent &lt;b&gt;" in svg and "<b>" not in svg
    assert "style=" not in svg
    assert '<table class="visually-hidden chart-figures">' in svg
    assert "<td>3</td><td>1</td>" in svg and "<td>0</td><td>2</td>" in svg
