"""Plots as inline SVG rendered on the server by pygal: readable without JavaScript, nothing fetched.

pygal embeds its configuration as a <script> for its optional tooltips; the browser's pages forbid script
(Content-Security-Policy) and need none, so it is removed, and every value is also in a <title> text.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import pygal  # type: ignore[import-untyped]  # pygal publishes no type information
from pygal.style import Style  # type: ignore[import-untyped]

_SCRIPT = re.compile(r"<script.*?</script>", re.DOTALL)
# A sparkline needs only its line: pygal's comments, fonts, title and empty overlay groups go.
_SPARK_EXTRAS = re.compile(r"<!--.*?-->|<defs>.*?</defs>|<title>.*?</title>|<g[^>]*/>", re.DOTALL)
_STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    font_family="system-ui, sans-serif",
    colors=("#2e7d32", "#c62828", "#f9a825", "#1565c0"),
    label_font_size=11,
    legend_font_size=12,
)
# The result colours of the pages' cells, so the counts plot reads like the grid.
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "flaky": "#f9a825", "duration": "#1565c0"}


def _svg(text: object) -> str:
    return _SCRIPT.sub("", str(text))


@functools.lru_cache(maxsize=4096)
def sparkline(durations: tuple[float, ...]) -> str:
    """A duration sparkline (oldest first); cached by its values, so each plan renders once per change."""
    if len(durations) < 2:
        return ""
    chart = pygal.Line(js=[], css=[], show_dots=False, disable_xml_declaration=True)
    chart.add("", [round(d, 1) for d in durations])
    return _SPARK_EXTRAS.sub("", _svg(chart.render_sparkline(width=120, height=28)))


def duration_chart(labels: Sequence[str], durations: Sequence[float]) -> str:
    chart = _line("Duration (seconds)", labels, (COLOURS["duration"],))
    chart.y_labels = _ticks(max(durations, default=0))
    chart.add("duration", [round(d, 2) for d in durations])
    return _svg(chart.render(is_unicode=True))


def counts_chart(labels: Sequence[str], series: dict[str, Sequence[int]]) -> str:
    chart = _line("Tests per run", labels, tuple(COLOURS[name] for name in series))
    chart.y_labels = _ticks(max((v for values in series.values() for v in values), default=0), whole=True)
    for name, values in series.items():
        chart.add(name, list(values))
    return _svg(chart.render(is_unicode=True))


def _ticks(top: float, whole: bool = False) -> list[float]:
    """About five round steps (1, 2 or 5 x 10^n) from 0 to `top` or above; whole ones for counts."""
    if top <= 0:
        return [0, 1]
    rough = top / 5
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    if whole:
        step = max(1, round(step))
    return [round(i * step, 6) for i in range(math.ceil(top / step) + 1)]


def _line(title: str, labels: Sequence[str], colours: tuple[str, ...]) -> pygal.Line:
    style = Style(**{**_STYLE.to_dict(), "colors": colours})
    return pygal.Line(
        js=[],
        style=style,
        title=title,
        width=640,
        height=260,
        x_labels=list(labels),
        x_labels_major_count=6,
        show_minor_x_labels=False,
        x_label_rotation=0,
        legend_at_bottom=True,
        dots_size=2,
        disable_xml_declaration=True,
        include_x_axis=True,
        truncate_label=-1,
    )
