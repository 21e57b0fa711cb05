"""The dashboard's charts as inline SVG, drawn on the server: no script, no external asset.

Each function returns markup that Jinja2 inserts as is (`Markup`); every text in it is
escaped here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
BAR = 22  # height of a horizontal bar, and its gap
ACCENT = "#0b62d6"
SOFT = "#9ab8e6"


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    note: str = ""  # shown after the value, e.g. "42%"


def horizontal_bars(title: str, bars: Sequence[Bar]) -> Markup:
    """One bar a line, longest = the largest value: the funnel, drop-off per question."""
    label_width = 190
    room = WIDTH - label_width - 110
    largest = max((bar.value for bar in bars), default=0) or 1
    height = BAR * len(bars) + 8
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, bar in enumerate(bars):
        y = 4 + index * BAR
        length = round(room * bar.value / largest, 1)
        text = f"{bar.value:,}" + (f" · {bar.note}" if bar.note else "")
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end" font-size="13" '
            f'fill="currentColor">{escape(bar.label)}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{length}" height="{BAR - 6}" rx="3" '
            f'fill="{ACCENT if index == 0 else SOFT}"><title>{escape(bar.label)}: '
            f"{escape(text)}</title></rect>"
            f'<text x="{label_width + length + 6}" y="{y + 15}" font-size="12" '
            f'fill="currentColor">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text in it went through escape()


def columns(title: str, bars: Sequence[Bar], *, every: int = 1) -> Markup:
    """Vertical bars over labels (every `every`-th shown): speed to lead, leads per day."""
    height, base, top = 200, 160, 14
    count = max(len(bars), 1)
    step = (WIDTH - 20) / count
    largest = max((bar.value for bar in bars), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<line x1="10" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="currentColor" '
        'stroke-opacity=".3"/>'
    ]
    for index, bar in enumerate(bars):
        x = 10 + index * step
        tall = round((base - top) * bar.value / largest, 1)
        width = max(round(step * 0.8, 1), 1)
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{base - tall}" width="{width}" height="{tall}" '
            f'rx="2" fill="{ACCENT}"><title>{escape(bar.label)}: {bar.value:,}</title></rect>'
        )
        if bar.value and count <= 16:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{base - tall - 3}" text-anchor="middle" '
                f'font-size="11" fill="currentColor">{bar.value:,}</text>'
            )
        if index % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                f'font-size="11" fill="currentColor">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text in it went through escape()
