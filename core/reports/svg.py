"""Inline SVG charts for the HTML report: no JavaScript, no network, no plotting library.

Each function returns one ``<svg>`` element as a string. Every text that comes
from data is XML-escaped here; the template marks the result safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from core.reports.render import pct

FONT = "system-ui, 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
BAR = "#2f6fb3"
SMALL = "#9dbbe0"
GRID = "#d9dee5"
INK = "#1d2733"
MUTED = "#6b7785"


def _text_width(text: str, size: float = 12) -> float:
    """Rough rendered width: CJK characters are about one em, Latin about 0.6 em."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def _clip(text: str, width: float, size: float = 13) -> str:
    """Shorten a label to fit ``width`` pixels (the full text stays in the SVG <title> tooltip)."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _open(width: int, height: int, title: str, font_size: int) -> list[str]:
    """The ``<svg>`` element's opening and the chart's title, escaped."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="{FONT}" font-size="{font_size}">',
        f'<text x="0" y="18" font-size="15" font-weight="600" fill="{INK}">{escape(title)}</text>',
    ]


def bar_chart(
    items: Sequence[tuple[str, float | None, bool]], *, title: str, empty: str, width: int = 640
) -> str:
    """Horizontal bars of rates 0–1: (label, value or None, small sample); small samples lighter."""
    row, top, left, right = 30, 34, 200, 70
    height = top + max(1, len(items)) * row + 26
    plot = width - left - right
    parts = _open(width, height, title, 13)
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot * tick
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 22}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="11">'
            f"{int(tick * 100)}%</text>"
        )
    if not items:
        parts.append(
            f'<text x="{left + plot / 2:.1f}" y="{top + 18}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(empty)}</text>"
        )
    for i, (name, value, small) in enumerate(items):
        y = top + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 19}" text-anchor="end" fill="{INK}">'
            f"<title>{escape(name)}</title>{escape(_clip(name, left - 14))}</text>"
        )
        if value is not None:
            w = max(0.0, min(1.0, value)) * plot
            parts.append(
                f'<rect x="{left}" y="{y + 5}" width="{w:.1f}" height="{row - 10}" rx="3" '
                f'fill="{SMALL if small else BAR}"/>'
            )
            parts.append(
                f'<text x="{left + w + 6:.1f}" y="{y + 19}" fill="{INK}">{pct(value)}'
                f"{' *' if small else ''}</text>"
            )
        else:
            parts.append(f'<text x="{left + 6}" y="{y + 19}" fill="{MUTED}">—</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    title: str,
    width: int = 640,
    height: int = 260,
) -> str:
    """Lines of rates 0–1 over periods: series are (name, colour, values); None breaks a line."""
    top, bottom, left, right = 56, 40, 46, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(labels))
    step = plot_w / (n - 1) if n > 1 else 0

    def x(i: int) -> float:
        return left + (i * step if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, v)))

    parts = _open(width, height, title, 12)
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="11">'
            f"{int(tick * 100)}%</text>"
        )
    for i, name in enumerate(labels):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="11">{escape(name)}</text>'
        )
    legend_x = width - right
    for name, colour, _ in reversed(series):
        legend_x -= 16 + _text_width(name) + 18
        parts.append(
            f'<rect x="{legend_x:.1f}" y="28" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{legend_x + 16:.1f}" y="38" fill="{INK}">{escape(name)}</text>'
        )
    for name, colour, values in series:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(values):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(name)} {escape(labels[i])}: {pct(v)}</title></circle>"
            )
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                parts.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5"/>'
                )
    parts.append("</svg>")
    return "".join(parts)
