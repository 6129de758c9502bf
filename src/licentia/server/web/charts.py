"""Bar charts drawn on the server as SVG, readable without colour.

A chart is its geometry, computed here, and drawn by the ``bar_chart`` macro of
``templates/charts.html``: every bar that is not zero carries its value as text, the
axis is labelled with days, the series has a pattern as well as a colour, and the
same figures are in a table beside the picture for screen readers and for anyone who
prefers numbers. No script, no library: a chart is a few kilobytes of markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from babel.dates import format_skeleton

from licentia.server.reports.days import DayCount

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 24, 22, 30


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str
    show_label: bool  # the axis label under this bar (every few bars when crowded)


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    baseline: float = HEIGHT - _BOTTOM

    @property
    def empty(self) -> bool:
        return all(bar.value == 0 for bar in self.bars)


def bar_chart(points: Sequence[tuple[str, int]], *, labels_every: int = 0) -> BarChart:
    """The geometry of a bar chart of ``points`` (label, value), in order."""
    plot_width, plot_height = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    top = _nice_top(max((value for _, value in points), default=0))
    slot = plot_width / max(len(points), 1)
    every = labels_every or max(1, round(len(points) / 6))
    bars = []
    for index, (label, value) in enumerate(points):
        height = plot_height * value / top
        bars.append(
            Bar(
                x=round(_LEFT + index * slot + slot * 0.15, 2),
                y=round(_TOP + plot_height - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
                value=value,
                label=label,
                show_label=(len(points) - 1 - index) % every == 0,
            )
        )
    ticks = [
        Tick(round(_TOP + plot_height - plot_height * step / 4, 2), top * step // 4)
        for step in range(5)
    ]
    return BarChart(bars, ticks)


def _nice_top(highest: int) -> int:
    """The axis' top: 4, or the smallest 1/2/5 x 10^n at or above the highest value
    that divides into four equal whole steps."""
    if highest <= 4:
        return 4
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            top = step * magnitude * 4
            if top >= highest:
                return top
        magnitude *= 10


def day_chart(days: Sequence[DayCount], language: str) -> BarChart:
    """A bar per day, labelled with the day in ``language`` ("Dec 3", "3. Dez.")."""
    return bar_chart([(day_label(d.day, language), d.count) for d in days])


@lru_cache(maxsize=4096)
def day_label(day: date, language: str) -> str:
    """A day's short label. Kept once made: Babel matches the skeleton against every
    pattern of the locale on each call, and a dashboard labels 90 bars."""
    return format_skeleton("MMMd", day, locale=language)
