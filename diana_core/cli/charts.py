"""A dependency-free SVG bar chart (throughput over time) for the job report and the status page."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def svg_bars(points: Sequence[tuple[str, float]], title: str, width: int = 720, height: int = 220,
             unit: str = "studies") -> str:
    """Bars for (label, value) points with the first/last label under the axis; an empty chart says so."""
    pad_l, pad_b, pad_t = 44, 28, 24
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{pad_l}" y="16" font-size="13" font-family="sans-serif">{escape(title)}</text>',
             f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 8}" y2="{pad_t + inner_h}" stroke="#888"/>']
    top = max((v for _, v in points), default=0)
    if not points or top <= 0:
        parts.append(f'<text x="{pad_l + 8}" y="{pad_t + inner_h / 2}" font-size="12" fill="#888">no {unit} yet'
                     "</text></svg>")
        return "".join(parts)
    step = inner_w / max(len(points), 30)  # a lone bar stays a bar, not a block
    for i, (label, value) in enumerate(points):
        h = inner_h * value / top
        parts.append(f'<rect class="bar" x="{pad_l + i * step + 1:.1f}" y="{pad_t + inner_h - h:.1f}" '
                     f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="#2f7ed8">'
                     f"<title>{escape(label)}: {value:g} {unit}</title></rect>")
    parts.append(f'<text x="4" y="{pad_t + 10}" font-size="11">{top:g}</text>')
    parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="11">{escape(points[0][0])}</text>')
    parts.append(f'<text x="{width - 8}" y="{height - 8}" font-size="11" text-anchor="end">'
                 f"{escape(points[-1][0])}</text></svg>")
    return "".join(parts)
