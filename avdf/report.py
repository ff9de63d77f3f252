"""Self-contained HTML: one report per video (images inlined) and a sortable index of a folder.

Built from data.report's page, table and image helpers; every figure is drawn without pyplot.
Elements a reader (and the browser test) looks for carry ids: ``verdict``, ``timeline-face<k>``,
``thumbs-face<k>``, ``matrices-face<k>``, ``windows-face<k>``, ``settings``; the index table is
``results``.
"""
from __future__ import annotations

import html
import json
import pathlib
from typing import Mapping, Optional, Sequence

import numpy as np

from data import report as report_html


def _fmt(value, digits: int = 3) -> str:
  if value is None:
    return "n/a"
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return str(value)


def verdict_block(result: Mapping) -> str:
  verdict = result["verdict"]
  css = verdict if verdict in ("fake", "real") else "unsure"
  if result["probability"] is not None:
    text = (f"Verdict: <b>{html.escape(verdict.upper())}</b> &mdash; fake probability "
            f"<b>{result['probability']:.3f}</b> (verdict at threshold {result['threshold']}), "
            f"decided by face {result['deciding_face'] + 1} of {len(result['faces'])}")
  else:
    text = (f"<b>No verdict</b> &mdash; {html.escape(result.get('note', ''))}. Highest raw "
            f"scores: FakeOut {_fmt(result['fakeout_max'])} (fake probability of its own "
            f"training, uncalibrated), inconsistency {_fmt(result['inconsistency_max'])} "
            "(&minus;(identity + audio-video consistency); higher = less consistent)")
  return f"<div id='verdict' class='verdict {css}'>{text}</div>"


def timeline_figure(face: Mapping):
  """FakeOut's clips and the inconsistency windows of one face on one time axis."""
  rows = [("fakeout", "FakeOut clip\nfake probability")]
  if face.get("windows"):
    rows.append(("intra", "identity\nconsistency"))
    if face["has_audio"]:
      rows.append(("cross", "audio-video\nagreement"))
  fig, axes = report_html.figure(len(rows), 1, figsize=(9, 1.7 * len(rows) + 0.6),
                                 sharex=True, squeeze=False)
  flagged = [face["windows"][i] for i in face.get("flagged_windows", [])]
  for ax, (key, label) in zip(axes[:, 0], rows):
    for w in flagged:
      ax.axvspan(w["start"], w["end"], color="tab:red", alpha=0.12, lw=0)
    if key == "fakeout":
      for clip in face.get("clips", []):
        ax.hlines(clip["score"], clip["start"], clip["end"], color="tab:purple", lw=3)
      ax.set_ylim(-0.03, 1.03)
      ax.axhline(0.5, color="k", ls=":", lw=0.8)
    else:
      windows = face["windows"]
      ax.bar([(w["start"] + w["end"]) / 2 for w in windows], [w[key] for w in windows],
             width=[0.9 * (w["end"] - w["start"]) for w in windows],
             color=["tab:red" if w["flagged"] else "tab:blue" for w in windows])
      ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel(label, fontsize=8)
  axes[-1, 0].set_xlabel("time (s); shaded red = least consistent windows")
  fig.tight_layout()
  return fig


def matrices_figure(face: Mapping):
  matrices = [("identity  <mu(t), mu(q)>", face["identity_matrix"])]
  if "cross_matrix" in face:
    matrices.append(("video-audio  <gamma(t), alpha(q)>", face["cross_matrix"]))
  labels = [f"{w['start']:.1f}s" for w in face["windows"]]
  fig, axes = report_html.figure(1, len(matrices), figsize=(4.4 * len(matrices), 3.9),
                                 squeeze=False)
  for ax, (title, matrix) in zip(axes[0], matrices):
    image = ax.imshow(np.asarray(matrix), cmap="viridis", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    fig.colorbar(image, ax=ax, fraction=0.046)
  fig.tight_layout()
  return fig


def _strip(faces: np.ndarray, size: int = 112) -> np.ndarray:
  """The sampled faces of one window side by side, each `size` pixels square."""
  import cv2
  return np.concatenate([cv2.resize(np.asarray(f), (size, size), interpolation=cv2.INTER_AREA)
                         for f in faces], axis=1)


def face_section(face: Mapping, media: Mapping) -> tuple[str, str]:
  k = face["face"]
  rows = [("fused fake probability", _fmt(face["probability"])),
          ("verdict", face["verdict"]),
          ("calibration fit used", face.get("fit") or "none"),
          ("FakeOut score (mean clip probability)", _fmt(face["fakeout"])),
          ("identity consistency (Score_intra)", _fmt(face["intra"])),
          ("audio-video consistency (Score_cross)", _fmt(face["cross"])),
          ("inconsistency status", face["inconsistency_status"]),
          ("frames / face seen", f"{face['num_frames']} / "
                                 f"{100 * face['detected_fraction']:.0f}%")]
  parts = [report_html.table(["", f"face {k + 1}"], rows)]
  parts += [f"<p class='small'>&#9888; {html.escape(flag)}</p>" for flag in face["flags"]]
  thumbs = media.get("thumbnails") or ([media["frame"]] if media.get("frame") is not None
                                       else [])
  titles = [f"{c['start']:.1f}-{c['end']:.1f} s: FakeOut {c['score']:.3f}"
            for c in face.get("clips", [])] or ["face"]
  parts.append(f"<div id='thumbs-face{k}' class='thumbs'>" + "".join(
      report_html.img(t, alt=f"face {k + 1}", title=title) for t, title in zip(thumbs, titles))
      + "</div>")
  parts.append(f"<div id='timeline-face{k}'><h3>Timeline</h3>"
               + report_html.img(timeline_figure(face), alt=f"timeline of face {k + 1}")
               + "</div>")
  if face.get("windows"):
    flagged = face["flagged_windows"]
    window_parts = []
    for i in flagged:
      w = face["windows"][i]
      strip = media.get("window_faces", {}).get(i)
      image = "" if strip is None else report_html.img(_strip(strip), alt=f"window {i} faces")
      cross = "" if w["cross"] is None else f", audio-video {w['cross']:.3f}"
      window_parts.append(f"<p>Window {i}, {w['start']:.2f}-{w['end']:.2f} s: identity "
                          f"{w['intra']:.3f}{cross}<br>{image}</p>")
    parts.append(f"<div id='windows-face{k}'><h3>Least consistent windows</h3>"
                 + "".join(window_parts) + "</div>")
    parts.append(f"<div id='matrices-face{k}'><h3>Similarity matrices</h3>"
                 + report_html.img(matrices_figure(face), alt="similarity matrices") + "</div>")
  title = f"Face {k + 1}: probability {_fmt(face['probability'])}"
  return title, "".join(parts)


def settings_section(result: Mapping) -> str:
  rows = []
  for part, values in result["settings"].items():
    if values is None:
      rows.append((part, "not used"))
      continue
    for key, value in values.items():
      rows.append((f"{part}: {key}", value))
  rows += [(f"time: {k}", v) for k, v in result.get("timings", {}).items()]
  return f"<div id='settings'>{report_html.table(['setting', 'value'], rows)}</div>"


def render_video(result: Mapping, media: Mapping) -> str:
  sections = [("", verdict_block(result))]
  for face in result["faces"]:
    sections.append(face_section(face, media.get(face["face"], {})))
  sections.append(("Settings and checkpoints", settings_section(result)))
  name = pathlib.Path(result["video"]).name
  return report_html.page(f"Deepfake report: {name}", sections,
                          subtitle=f"{result['video']} ({result['video_id']})")


_SORT_SCRIPT = """
<script>
function sortBy(column, numeric) {
  const table = document.getElementById('results');
  const rows = Array.from(table.tBodies[0].rows);
  const header = table.tHead.rows[0].cells[column];
  const descending = header.dataset.order !== 'desc';
  header.dataset.order = descending ? 'desc' : 'asc';
  const key = r => r.cells[column].dataset.value;
  rows.sort((a, b) => {
    let x = key(a), y = key(b);
    if (numeric) { x = parseFloat(x); y = parseFloat(y);
      x = isNaN(x) ? -1 : x; y = isNaN(y) ? -1 : y; return descending ? y - x : x - y; }
    return descending ? y.localeCompare(x) : x.localeCompare(y);
  });
  rows.forEach(r => table.tBodies[0].appendChild(r));
}
</script>
"""


def render_index(entries: Sequence[Mapping], title: str = "Deepfake detection results",
                 subtitle: str = "") -> str:
  """entries: {'video_id', 'report' (relative link or None), 'status', 'probability', 'verdict',
  'fakeout_max', 'inconsistency_max', 'faces', 'reason'}; sorted by probability, highest
  first; every column header sorts on click."""
  columns = [("video", False), ("fake probability", True), ("verdict", False),
             ("FakeOut (raw)", True), ("inconsistency (raw)", True), ("faces", True),
             ("status", False)]
  head = "".join(f"<th data-order='' onclick='sortBy({i}, {str(numeric).lower()})' "
                 f"style='cursor:pointer'>{html.escape(name)} &#8645;</th>"
                 for i, (name, numeric) in enumerate(columns))

  def cell(text, value=None):
    value = text if value is None else value
    return f"<td data-value='{html.escape(str(value), quote=True)}'>{text}</td>"

  ordered = sorted(entries, key=lambda e: -1.0 if e.get("probability") is None
                   else e["probability"], reverse=True)
  body = []
  for e in ordered:
    name = html.escape(e["video_id"])
    link = (f"<a href='{html.escape(e['report'], quote=True)}'>{name}</a>"
            if e.get("report") else name)
    status = e["status"] if e["status"] == "ok" else f"{e['status']} ({e.get('reason') or ''})"
    body.append("<tr>" + cell(link, e["video_id"])
                + cell(_fmt(e.get("probability")), _num(e.get("probability")))
                + cell(html.escape(e.get("verdict") or ""))
                + cell(_fmt(e.get("fakeout_max")), _num(e.get("fakeout_max")))
                + cell(_fmt(e.get("inconsistency_max")), _num(e.get("inconsistency_max")))
                + cell(str(e.get("faces", 0)), e.get("faces", 0))
                + cell(html.escape(status)
                       + (f"<br><span class='small'>{html.escape(e['message'])}</span>"
                          if e.get("message") else ""), e["status"]) + "</tr>")
  table = (f"<table id='results'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
           "</tbody></table>")
  page = report_html.page(title, [("", table)], subtitle=subtitle)
  return page.replace("</body>", _SORT_SCRIPT + "</body>")


def _num(value: Optional[float]) -> str:
  return "" if value is None else f"{value:.6f}"


def write_video_report(path: pathlib.Path, result: Mapping, media: Mapping) -> pathlib.Path:
  return report_html.write(path, render_video(result, media))


def write_json(path: pathlib.Path, content) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(content, indent=1) + "\n")
  return path
