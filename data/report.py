"""Self-contained HTML reports (images inlined as base64 PNG) for the single-video commands."""
from __future__ import annotations

import base64
import html
import io
import pathlib
from typing import Sequence

import numpy as np

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.verdict { font-size: 1.3em; padding: .6em 1em; border-radius: 6px; display: inline-block; }
.fake { background: #fde2e1; } .real { background: #e1f5e4; } .unsure { background: #f3f3f3; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
img { max-width: 100%; } .thumbs img { width: 112px; margin: 2px; }
.small { color: #666; font-size: .9em; }
"""


def png_uri(image) -> str:
  """A data: URI of a matplotlib figure or an RGB uint8 array."""
  buffer = io.BytesIO()
  if hasattr(image, "savefig"):
    image.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  else:
    from PIL import Image
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="png")
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def img(image, alt: str = "", title: str = "") -> str:
  return (f'<img src="{png_uri(image)}" alt="{html.escape(alt)}" '
          f'title="{html.escape(title)}">')


def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
  body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                 for row in rows)
  return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, sections: Sequence[tuple[str, str]], subtitle: str = "") -> str:
  """An HTML page: a title and (heading, inner HTML) sections; inner HTML is trusted."""
  parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
  if subtitle:
    parts.append(f"<p class='small'>{html.escape(subtitle)}</p>")
  for heading, inner in sections:
    parts.append(f"<h2>{html.escape(heading)}</h2>{inner}" if heading else inner)
  parts.append("</body></html>")
  return "\n".join(parts)


def write(path: str | pathlib.Path, content: str) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(content, encoding="utf-8")
  return path


def figure(nrows: int = 1, ncols: int = 1, **kwargs):
  """(Figure, axes) without pyplot: no global state and no backend switch, so plotting from the
  library is safe inside notebooks (inline plots keep working) and worker processes."""
  from matplotlib.figure import Figure
  subplot_kwargs = {k: kwargs.pop(k) for k in ("sharex", "sharey", "squeeze") if k in kwargs}
  fig = Figure(**kwargs)
  return fig, fig.subplots(nrows, ncols, **subplot_kwargs)
