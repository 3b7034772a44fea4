"""A tiny builder of one self-contained HTML page: sections of paragraphs,
notes, tables and inline images. Every string that reaches the page goes
through :func:`esc`, so a SMILES such as ``<script>`` stays text; images are
``data:`` URIs, so the page fetches nothing."""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

STYLE = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#243b55;color:#fff;padding:18px 28px}
header h1{margin:0 0 6px 0;font-size:1.5em}
header p{margin:2px 0;font-size:.9em;opacity:.9;word-break:break-all}
nav{padding:10px 28px;background:#e8ecf2;font-size:.9em}
nav a{margin-right:14px;color:#243b55}
main{padding:8px 28px 40px 28px;max-width:1280px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:6px 18px 14px 18px;margin:16px 0}
h2{font-size:1.2em;border-bottom:1px solid #dde2ea;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:.85em}
th,td{border:1px solid #dde2ea;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{font-family:Menlo,Consolas,monospace;word-break:break-all;max-width:520px}
.note{background:#fff8e1;border-left:4px solid #f0b429;padding:6px 10px;margin:8px 0;font-size:.9em}
.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;border:1px solid #dde2ea;border-radius:4px;padding:4px;background:#fff}
.grid figure{width:210px}
figure img{display:block;max-width:100%}
figcaption{font-size:.75em;word-break:break-all;margin-top:2px}
figcaption .text{font-family:Menlo,Consolas,monospace}
.caption{font-size:.85em;color:#4a5568}
"""


def esc(value: Any) -> str:
    """HTML-escaped text of any value (quotes included, for attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A short, readable form of a table value: floats to about ``digits``
    significant digits, NaN/None as an en dash, booleans as yes/no."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            return "\u2013" if math.isnan(value) else str(value)
        size = abs(value)
        if value != 0 and (size >= 1e6 or size < 1e-3):
            return f"{value:.{digits - 1}e}"
        if size >= 1000:
            return f"{value:,.1f}"
        if size >= 10:
            return f"{value:.{digits}g}"
        return f"{value:.{digits - 1}f}" if size >= 1 else f"{value:.{digits}f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def flatten(value: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested settings as dotted ``(name, value)`` pairs for a table; lists
    (and empty dicts) as compact JSON."""
    pairs: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            pairs += flatten(item, name)
        else:
            pairs.append((name, json.dumps(item) if isinstance(item, (list, tuple, dict)) else item))
    return pairs


def data_uri(mime: str, payload: bytes | str) -> str:
    """A base64 ``data:`` URI (an SVG inside one cannot run scripts, and its
    namespace URLs never show up as page markup)."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


@dataclass
class Image:
    """An image for the page: PNG bytes or SVG text, with its alt text."""

    payload: bytes | str
    mime: str
    alt: str

    @classmethod
    def png(cls, data: bytes, alt: str) -> "Image":
        return cls(data, "image/png", alt)

    @classmethod
    def svg(cls, text: str, alt: str) -> "Image":
        return cls(text, "image/svg+xml", alt)

    def tag(self) -> str:
        return f'<img src="{data_uri(self.mime, self.payload)}" alt="{esc(self.alt)}">'


@dataclass
class Section:
    """One ``<section>``: a heading and its parts (already escaped HTML)."""

    heading: str
    anchor: str
    parts: list[str] = field(default_factory=list)
    n_images: int = 0

    def paragraph(self, text: str) -> "Section":
        """Add a paragraph of plain text."""
        self.parts.append(f"<p>{esc(text)}</p>")
        return self

    def note(self, text: str) -> "Section":
        """Add a highlighted note (what is missing, and why)."""
        self.parts.append(f'<p class="note">{esc(text)}</p>')
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, text_columns: Sequence[int] = (),
              caption: str | None = None) -> "Section":
        """Add a table; ``text_columns`` (indices) are shown in a monospace
        font that wraps anywhere (SMILES, sequences, paths)."""
        out = ["<table>"]
        if caption:
            out.append(f"<caption class=\"caption\">{esc(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
        for row in rows:
            cells = []
            for i, value in enumerate(row):
                cls = "text" if i in text_columns else ("num" if _is_number(value) else "")
                cells.append(f'<td class="{cls}">{esc(fmt(value))}</td>' if cls else f"<td>{esc(fmt(value))}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("".join(out))
        return self

    def key_values(self, items: dict[str, Any] | Sequence[tuple[str, Any]], caption: str | None = None) -> "Section":
        """Add a two-column table of names and values."""
        pairs = list(items.items()) if isinstance(items, dict) else list(items)
        return self.table(["setting", "value"], pairs, caption=caption)

    def image(self, image: Image, caption: str | None = None) -> "Section":
        """Add one figure."""
        cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        self.parts.append(f"<figure>{image.tag()}{cap}</figure>")
        self.n_images += 1
        return self

    def grid(self, items: Sequence[tuple[Image, Sequence[str], str | None]]) -> "Section":
        """Add a grid of small figures, each ``(image, caption lines, text line)``:
        the caption lines are plain text, the text line (a SMILES, a formula)
        is shown in monospace."""
        out = ['<div class="grid">']
        for image, lines, text in items:
            caption = "<br>".join(esc(line) for line in lines)
            if text:
                caption += ("<br>" if caption else "") + f'<span class="text">{esc(text)}</span>'
            out.append(f"<figure>{image.tag()}<figcaption>{caption}</figcaption></figure>")
            self.n_images += 1
        out.append("</div>")
        self.parts.append("".join(out))
        return self

    def render(self) -> str:
        return f'<section id="{esc(self.anchor)}"><h2>{esc(self.heading)}</h2>{"".join(self.parts)}</section>'


class Page:
    """The whole report: a title, header lines and sections.

    Args:
        title: Page title (plain text).
        header: Lines under the title (plain text).
    """

    def __init__(self, title: str, header: Sequence[str] = ()):
        self.title = title
        self.header = list(header)
        self.sections: list[Section] = []

    def section(self, heading: str) -> Section:
        """A new section, appended to the page."""
        base = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "section"
        anchor, taken = base, {s.anchor for s in self.sections}
        n = 2
        while anchor in taken:
            anchor, n = f"{base}-{n}", n + 1
        section = Section(heading, anchor)
        self.sections.append(section)
        return section

    @property
    def n_images(self) -> int:
        """Images on the page."""
        return sum(s.n_images for s in self.sections)

    def render(self) -> str:
        """The page as one HTML string (no external resources)."""
        head = "".join(f"<p>{esc(line)}</p>" for line in self.header)
        nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.heading)}</a>' for s in self.sections)
        body = "".join(s.render() for s in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(self.title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1>{head}</header><nav>{nav}</nav><main>{body}</main></body></html>\n"
        )
