"""One self-contained HTML file per run: headings, text, tables and PNG plots inlined as base64."""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Sequence
from pathlib import Path

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #4c72b0;padding-bottom:.2em}h2{margin-top:1.8em;color:#2b4a7a}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}th{background:#eef2f8}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.88em;color:#555}pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em}
.best{background:#e7f5e7;font-weight:bold}.meta{color:#666;font-size:.9em}
.thumbs{display:flex;flex-wrap:wrap;gap:6px}.thumb{margin:0;width:96px}
.thumb img{width:96px;height:96px;object-fit:cover;border-radius:4px}
.thumb figcaption{font-size:.7em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
"""


class Report:
    """Build a report block by block, then ``save(path)``; images are embedded, nothing is linked."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.blocks: list[str] = []
        self.images = 0

    def heading(self, text: str, level: int = 2) -> Report:
        self.blocks.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str) -> Report:
        self.blocks.append(f"<p>{html.escape(text)}</p>")
        return self

    def pre(self, text: str) -> Report:
        self.blocks.append(f"<pre>{html.escape(text)}</pre>")
        return self

    def json(self, data: dict) -> Report:
        return self.pre(json.dumps(data, indent=2, ensure_ascii=False))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]],
              highlight: int | None = None) -> Report:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = []
        for i, row in enumerate(rows):
            cls = ' class="best"' if highlight == i else ""
            cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
            body.append(f"<tr{cls}>{cells}</tr>")
        self.blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        return self

    def image(self, png: bytes, caption: str = "") -> Report:
        data = base64.b64encode(png).decode("ascii")
        alt = html.escape(caption or "plot")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>')
        self.images += 1
        return self

    def thumbnails(self, items: Sequence[tuple[bytes, str]], title: str = "") -> Report:
        """A row of small JPEG images (``(jpeg bytes, caption)``), inlined, wrapping as needed."""
        cells = []
        for jpeg, caption in items:
            data = base64.b64encode(jpeg).decode("ascii")
            cap = html.escape(caption)
            cells.append(f'<figure class="thumb"><img alt="{cap}" title="{cap}" '
                         f'src="data:image/jpeg;base64,{data}"><figcaption>{cap}</figcaption></figure>')
        head = f"<h3>{html.escape(title)}</h3>" if title else ""
        self.blocks.append(f'{head}<div class="thumbs">{"".join(cells)}</div>')
        self.images += len(items)
        return self

    def render(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p class=\"meta\">facebank report, {stamp}</p>"
            + "\n".join(self.blocks) + "</body></html>\n"
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.4f}"
    return str(v)
