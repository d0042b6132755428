"""The experiment page's charts, drawn as SVG on the server (no script, nothing fetched).

- Lift by enrollment day: per metric, each treatment's lift over the baseline at each look (the units
  decided up to that day, as `courier results --plot` draws it), its 95% interval shaded and the
  always-valid interval dashed (clipped to the chart: early looks' always-valid bounds are wide).
- Units per variation per day: the units each variation enrolled on each day, as grouped bars.

Only presentation attributes are used (no `style`), so the page's content security policy holds. Every
text that reaches the markup is escaped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 680, 250
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 26, 44
INSET = 10  # the first and last day's points sit this far inside the plot area
COLOURS = ("#1f6fb4", "#d1495b", "#2a9d5b", "#8e5cc4", "#e08a1e", "#6b4f3a")
BASELINE_COLOUR = "#8a8f98"
X_LABELS = 8  # at most this many day labels on an axis


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [round(first + i * step, 12) for i in range(int(math.ceil((high - first) / step)) + 1)]


class Frame:
    """A chart's plot area: maps days and values to pixels."""

    def __init__(self, days: Sequence[dt.date], low: float, high: float):
        self.first, self.last = min(days), max(days)
        self.low, self.high = low, high

    def x(self, day: dt.date) -> float:
        span = (self.last - self.first).days
        share = 0.5 if span == 0 else (day - self.first).days / span
        return round(LEFT + INSET + share * (WIDTH - LEFT - RIGHT - 2 * INSET), 2)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return round(TOP + (1 - share) * (HEIGHT - TOP - BOTTOM), 2)


def _axes(frame: Frame, ticks: list[float], x_labels: list[tuple[float, str]], label: str,
          percent: bool) -> list[str]:
    parts = [f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>',
             f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
             'stroke="#999"/>']
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for tick in ticks:
        y = frame.y(tick)
        text = (f"{tick:+.{0 if step >= 0.01 else 1}%}" if tick else "0%") if percent else f"{tick:,.0f}"
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#e6e6e6"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" font-size="11" fill="#555">'
                     f'{escape(text)}</text>')
    every = max(1, math.ceil(len(x_labels) / X_LABELS))
    for x, text in x_labels[::every]:
        parts.append(f'<text x="{x}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#555">{escape(text)}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11" '
                 f'fill="#333">{escape(label)}</text>')
    return parts


def _polyline(points: list[tuple[float, float]], colour: str, extra: str = "") -> str:
    coordinates = " ".join(f"{x},{y}" for x, y in points)
    return f'<polyline points="{coordinates}" fill="none" stroke="{colour}" {extra}/>'


def _runs(points: list, present: str) -> list[list]:
    """The points split where `present` is None (a look at which the comparison is undefined)."""
    runs, current = [], []
    for point in points:
        if getattr(point, present) is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(point)
    return runs + ([current] if current else [])


def lift_chart(metric: str, series: dict[str, list], baseline: str, chart_id: str) -> str:
    """A metric's lift by enrollment day: `series` maps each treatment to its points (see
    `experiments.plot.Point`); returns the SVG markup."""
    shown = {variation: [p for p in points if p.lift is not None] for variation, points in series.items()}
    days = sorted({p.day for points in series.values() for p in points})
    values = [v for points in shown.values() for p in points for v in (p.lift, p.low, p.high) if v is not None]
    title = f"{metric}: lift over {baseline} by enrollment day"
    if not days or not values:
        return _empty(title, "no look at which a variation could be compared with the baseline yet")
    low, high = min(0.0, *values), max(0.0, *values)
    pad = (high - low) * 0.08 or 0.05
    ticks = nice_ticks(low - pad, high + pad)
    frame = Frame(days, ticks[0], ticks[-1])
    clip = f"clip-{chart_id}"
    parts = [f'<defs><clipPath id="{clip}"><rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
             f'height="{HEIGHT - TOP - BOTTOM}"/></clipPath></defs>',
             *_axes(frame, ticks, [(frame.x(day), f"{day:%m-%d}") for day in days],
                    "units enrolled up to (decision date, UTC)", percent=True),
             f'<line class="zero" x1="{LEFT}" y1="{frame.y(0)}" x2="{WIDTH - RIGHT}" y2="{frame.y(0)}" '
             'stroke="#444" stroke-width="1"/>', f'<g clip-path="url(#{clip})">']
    legend = []
    for index, (variation, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        for run in _runs(points, "low"):
            band = [(frame.x(p.day), frame.y(p.high)) for p in run] + [(frame.x(p.day), frame.y(p.low))
                                                                       for p in reversed(run)]
            parts.append(f'<polygon class="interval" points="{" ".join(f"{x},{y}" for x, y in band)}" '
                         f'fill="{colour}" fill-opacity="0.16" stroke="none"/>')
        for edge in ("always_valid_low", "always_valid_high"):
            for run in _runs(points, edge):
                parts.append(_polyline([(frame.x(p.day), frame.y(getattr(p, edge))) for p in run], colour,
                                       'class="always-valid" stroke-dasharray="5 3" stroke-width="1"'))
        for run in _runs(points, "lift"):
            parts.append(_polyline([(frame.x(p.day), frame.y(p.lift)) for p in run], colour,
                                   'class="lift" stroke-width="2"'))
        for p in shown[variation]:
            parts.append(f'<circle class="look" cx="{frame.x(p.day)}" cy="{frame.y(p.lift)}" r="3" fill="{colour}">'
                         f'<title>{escape(_point_text(variation, p))}</title></circle>')
        legend.append((colour, f"{variation} vs {baseline}"))
    parts.append("</g>")
    parts += _legend(legend + [("#777", "shaded: 95% interval; dashed: always-valid")])
    return _svg("chart lift-chart", title, parts)


def _point_text(variation: str, point: object) -> str:
    def interval(low: float | None, high: float | None) -> str:
        return "n/a" if low is None or high is None else f"[{low:+.1%}, {high:+.1%}]"

    return (f"{point.day}: {variation} lift {point.lift:+.1%}, 95% {interval(point.low, point.high)}, "
            f"always-valid {interval(point.always_valid_low, point.always_valid_high)}")


def units_chart(units: dict[str, list[tuple[dt.date, int]]], baseline: str) -> str:
    """Units enrolled per variation per day, as grouped bars (the baseline grey)."""
    days = sorted({day for counts in units.values() for day, _ in counts})
    title = "units enrolled per variation per day"
    if not days:
        return _empty(title, "no units yet")
    top = max(count for counts in units.values() for _, count in counts) or 1
    ticks = nice_ticks(0, top)
    frame = Frame(days, 0, ticks[-1])
    slot = (WIDTH - LEFT - RIGHT) / len(days)
    width = max(1.0, slot * 0.8 / max(len(units), 1))
    labels = [(round(LEFT + (position + 0.5) * slot, 2), f"{day:%m-%d}") for position, day in enumerate(days)]
    parts = _axes(frame, ticks, labels, "decision date (UTC)", percent=False)
    legend = []
    for index, (variation, counts) in enumerate(units.items()):
        colour = BASELINE_COLOUR if variation == baseline else COLOURS[index % len(COLOURS)]
        for day, count in counts:
            x = LEFT + days.index(day) * slot + slot * 0.1 + index * width
            y = frame.y(count)
            parts.append(f'<rect class="bar" x="{round(x, 2)}" y="{y}" width="{round(width, 2)}" '
                         f'height="{round(HEIGHT - BOTTOM - y, 2)}" fill="{colour}">'
                         f'<title>{escape(f"{day}: {variation} {count:,} units")}</title></rect>')
        legend.append((colour, variation + (" (baseline)" if variation == baseline else "")))
    parts += _legend(legend)
    return _svg("chart units-chart", title, parts)


def _legend(items: list[tuple[str, str]]) -> list[str]:
    parts, x = [], LEFT
    for colour, label in items:
        parts.append(f'<rect x="{x}" y="2" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="11" font-size="11" fill="#333">{escape(label)}</text>')
        x += 24 + 6.5 * len(label)
    return parts


def _svg(kind: str, title: str, parts: list[str]) -> str:
    return (f'<svg class="{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 -4 {WIDTH} {HEIGHT + 4}" '
            f'width="{WIDTH}" height="{HEIGHT + 4}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>{"".join(parts)}</svg>')


def _empty(title: str, message: str) -> str:
    return _svg("chart empty", title, [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="13" '
                                       f'fill="#777">{escape(message)}</text>'])
