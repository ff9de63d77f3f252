r"""Explains one video: which seconds are least consistent, in identity and in audio-video sync.

  python -m inconsistency_jax.explain VIDEO --checkpoint RUN_WORKDIR [--out DIR] [--top-k 3]
      [--which latest|best] [--threshold X]

The video goes through the same path as the data sets (face tracking, 112-px alignment,
windowing, the trained networks; no records on disk). For every face track it writes, under
--out (default ``<video name>_explain/``):

  report.json            scores (intra, cross, total; lower = less consistent), every window as
                         a time range with its own consistency, the flagged windows, flags
                         (no audio: identity only; fewer windows than asked: short video)
  report.html            the same, self-contained (images embedded as base64): open it anywhere
  track<k>_matrices.png  identity similarity matrix <mu(t), mu(q)> and video-audio matrix
                         <gamma(t), alpha(q)> as heatmaps (the paper's Fig. 3)
  track<k>_timeline.png  per-window identity consistency and cross-modal agreement C[t, t] over
                         time, flagged windows shaded
  track<k>_window<i>.png faces of each flagged window

A window's identity consistency is the ``eval.percentile``-th percentile of its row of the
identity matrix (without the diagonal); its cross-modal consistency is C[t, t]; the flagged
windows are the ``--top-k`` with the lowest sum. The video is scored by its least consistent
track. ``--threshold`` (e.g. chosen on real videos of a validation set) adds a verdict; without
it the report gives scores only, since an uncalibrated threshold would be a guess.
"""
from __future__ import annotations

import argparse
import html
import json
import logging
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np

from data import cli_errors
from data import constants
from data import report as report_html
from inconsistency_jax import inference
from inconsistency_jax import scoring

log = logging.getLogger(__name__)


class ExplainError(RuntimeError):
  """The video cannot be explained (no face, too short); the message says why."""


def serialize_tracks(video_path: str, tracks: Sequence) -> list[bytes]:
  """data.tracks.Track objects -> serialized records (as data.prepare writes them)."""
  from data import prepare
  from data.datasets import base
  record = base.VideoRecord(video_path=str(video_path), label=constants.REAL,
                            video_id=pathlib.Path(video_path).stem, dataset="explain", split="",
                            category="unknown", has_audio=True)
  return prepare.track_records(record, list(tracks))


def window_report(scored: inference.ScoredTrack, timestamps: np.ndarray, window_frames: int,
                  requested: int, top_k: int) -> dict:
  """The JSON of one track: scores, windows as time ranges, flagged windows, flags."""
  plan = scoring.WindowPlan(starts=np.asarray(scored.starts), window_frames=window_frames,
                            requested=requested)
  out = {"track": int(scored.meta["track"]), "num_frames": int(scored.meta["num_frames"]),
         "has_audio": bool(scored.meta["has_audio"]), "num_windows": plan.num_windows,
         "requested_windows": requested, "status": scored.status, "flags": []}
  if not out["has_audio"]:
    out["flags"].append("no audio: scored by identity consistency only")
  if scored.score is None:
    out["flags"].append(f"too short: {out['num_frames']} frames hold fewer than "
                        f"{scoring.MIN_WINDOWS} windows of {window_frames} frames")
    return out
  if plan.reduced:
    out["flags"].append(f"short video: {plan.num_windows} windows instead of {requested}")
  s = scored.score
  per_window = s.window_consistency()
  total = per_window["intra"] + per_window.get("cross", 0.0)
  flagged = s.least_consistent_windows(min(top_k, plan.num_windows)).tolist()
  out["score"] = {"intra": s.intra, "cross": s.cross, "total": s.total,
                  "percentile": s.percentile}
  out["flagged_windows"] = flagged
  out["windows"] = [
      {"index": i, "start": round(a, 3), "end": round(b, 3),
       "intra": float(per_window["intra"][i]),
       "cross": float(per_window["cross"][i]) if "cross" in per_window else None,
       "total": float(total[i]), "flagged": i in flagged}
      for i, (a, b) in enumerate(plan.time_ranges(timestamps))]
  out["identity_matrix"] = np.round(s.identity_matrix, 4).tolist()
  if s.cross_matrix is not None:
    out["cross_matrix"] = np.round(s.cross_matrix, 4).tolist()
  return out


# ----------------------------------------------------------------------------------------------
# Figures


def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _labels(report: dict) -> list[str]:
  return [f"{w['start']:.1f}-{w['end']:.1f}s" for w in report["windows"]]


def plot_matrices(report: dict, path: pathlib.Path) -> pathlib.Path:
  plt = _plt()
  matrices = [("identity  <mu(t), mu(q)>", report["identity_matrix"])]
  if "cross_matrix" in report:
    matrices.append(("video-audio  <gamma(t), alpha(q)>", report["cross_matrix"]))
  labels = _labels(report)
  fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4.2), squeeze=False)
  for ax, (title, matrix) in zip(axes[0], matrices):
    image = ax.imshow(np.asarray(matrix), cmap="viridis", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    for i in report["flagged_windows"]:
      ax.add_patch(plt.Rectangle((-0.5, i - 0.5), len(labels), 1, fill=False, ec="red", lw=1))
    fig.colorbar(image, ax=ax, fraction=0.046)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_timeline(report: dict, path: pathlib.Path) -> pathlib.Path:
  plt = _plt()
  windows = report["windows"]
  centres = [(w["start"] + w["end"]) / 2 for w in windows]
  widths = [0.9 * (w["end"] - w["start"]) for w in windows]
  rows = [("identity consistency", "intra")]
  if report["has_audio"]:
    rows.append(("audio-video agreement C[t, t]", "cross"))
  fig, axes = plt.subplots(len(rows), 1, figsize=(7, 1.9 * len(rows)), sharex=True,
                           squeeze=False)
  for ax, (title, key) in zip(axes[:, 0], rows):
    values = [w[key] for w in windows]
    colours = ["tab:red" if w["flagged"] else "tab:blue" for w in windows]
    ax.bar(centres, values, width=widths, color=colours)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel(title, fontsize=8)
  axes[-1, 0].set_xlabel("time (s); red = flagged (least consistent) windows")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def save_window_faces(frames: np.ndarray, start: int, offsets: np.ndarray,
                      path: pathlib.Path, size: int = 96) -> pathlib.Path:
  import cv2
  indices = np.clip(start + offsets, 0, len(frames) - 1)
  strip = np.concatenate([cv2.resize(frames[i], (size, size), interpolation=cv2.INTER_AREA)
                          for i in indices], axis=1)
  cv2.imwrite(str(path), strip[..., ::-1])
  return path


# ----------------------------------------------------------------------------------------------
# Report


def explain_tracks(scorer: inference.Scorer, video_path: str, tracks: Sequence, out_dir,
                   top_k: int = 3, threshold: Optional[float] = None,
                   people_count: Optional[str] = None) -> dict:
  """Scores in-memory tracks of one video and writes the JSON, PNG and HTML report.

  `people_count`: the face tracker's rule that made `tracks`, recorded in the settings."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  scored = scorer.score_source(serialize_tracks(video_path, tracks))
  by_index = {t.track_index: t for t in tracks}
  reports = []
  for item in scored:
    track = by_index[int(item.meta["track"])]
    report = window_report(item, np.asarray(track.timestamps), scorer.spec.window_frames,
                           scorer.num_windows, top_k)
    report["images"] = {}
    if report["status"] == "ok":
      k = report["track"]
      report["images"]["matrices"] = plot_matrices(
          report, out_dir / f"track{k}_matrices.png").name
      report["images"]["timeline"] = plot_timeline(
          report, out_dir / f"track{k}_timeline.png").name
      frames = track.frames_224 if track.frames_224 is not None else track.frames_112
      for i in report["flagged_windows"]:
        report["images"][f"window{i}"] = save_window_faces(
            frames, int(item.starts[i]), scorer.spec.frame_offsets(),
            out_dir / f"track{k}_window{i}.png").name
    reports.append(report)
  ok = [r for r in reports if r["status"] == "ok"]
  summary = {"video": str(video_path), "tracks": reports,
             "settings": {"window_seconds": scorer.config.model.window_seconds,
                          "windows": scorer.num_windows, "percentile": scorer.percentile,
                          "top_k": top_k, "threshold": threshold}}
  if people_count is not None:
    summary["settings"]["people_count"] = people_count
  if ok:
    worst = min(ok, key=lambda r: r["score"]["total"])
    summary["score"] = {**worst["score"], "track": worst["track"]}
    if threshold is not None:
      summary["verdict"] = "fake" if worst["score"]["total"] < threshold else "real"
  (out_dir / "report.json").write_text(json.dumps(summary, indent=1) + "\n")
  (out_dir / "report.html").write_text(render_html(summary, out_dir))
  if not ok:
    raise ExplainError(f"{video_path}: no face track is long enough to compare windows ("
                       + "; ".join(f for r in reports for f in r["flags"]) + ")")
  return summary


def _embedded(path: pathlib.Path, alt: str) -> str:
  import cv2
  return report_html.img(cv2.imread(str(path))[..., ::-1], alt=alt)


def render_html(summary: dict, out_dir: pathlib.Path) -> str:
  """A self-contained page (images inlined) with the same content as report.json."""
  esc = html.escape
  sections = []
  if "score" in summary:
    s = summary["score"]
    cross = "n/a (no audio)" if s["cross"] is None else f"{s['cross']:.3f}"
    verdict = summary.get("verdict", "unsure")
    text = (f"Video score (least consistent track {s['track']}): <b>{s['total']:.3f}</b> = "
            f"identity {s['intra']:.3f} + audio-video {cross}. Lower is less consistent.")
    if "verdict" in summary:
      text += (f" Verdict at threshold {summary['settings']['threshold']}: "
               f"<b>{esc(verdict)}</b>.")
    sections.append(("", f"<p class='verdict {verdict}'>{text}</p>"))
  for report in summary["tracks"]:
    parts = [f"<p class='verdict fake'>{esc(flag)}</p>" for flag in report["flags"]]
    if report["status"] == "ok":
      rows = [(w["index"], f"{w['start']:.2f}-{w['end']:.2f} s", f"{w['intra']:.3f}",
               "" if w["cross"] is None else f"{w['cross']:.3f}", f"{w['total']:.3f}",
               "flagged" if w["flagged"] else "") for w in report["windows"]]
      parts.append(report_html.table(
          ["window", "time", "identity", "audio-video", "sum", ""], rows))
      images = report["images"]
      parts += [f"<div>{_embedded(out_dir / images[key], key)}</div>"
                for key in ("matrices", "timeline") if key in images]
      for i in report["flagged_windows"]:
        w = report["windows"][i]
        parts.append(f"<p>Flagged window {i}, {w['start']:.2f}-{w['end']:.2f} s:<br>"
                     f"{_embedded(out_dir / images[f'window{i}'], f'window {i}')}</p>")
    sections.append((f"Track {report['track']}", "".join(parts)))
  settings = summary["settings"]
  subtitle = (f"{pathlib.Path(summary['video']).name}: {settings['windows']} windows of "
              f"{settings['window_seconds']} s, identity score = {settings['percentile']}th "
              "percentile of the identity similarities")
  return report_html.page("Inconsistency report", sections, subtitle=subtitle)


def explain_video(video_path: str, checkpoint: str, out_dir, which: Optional[str] = None,
                  top_k: int = 3, threshold: Optional[float] = None,
                  people_count: str = "robust") -> dict:
  from data import facetrack
  scorer = inference.Scorer.from_workdir(checkpoint, which=which)
  try:
    tracks = facetrack.track_video(video_path, people_count=people_count)
  except facetrack.VideoError as e:
    raise ExplainError(str(e)) from None
  return explain_tracks(scorer, video_path, tracks, out_dir, top_k=top_k, threshold=threshold,
                        people_count=people_count)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m inconsistency_jax.explain",
      description="Finds the least consistent seconds of a video (identity over time, audio vs "
                  "video) and writes JSON, PNG heatmaps and a self-contained HTML report.")
  parser.add_argument("video", help="video file")
  parser.add_argument("--checkpoint", required=True, metavar="DIR",
                      help="workdir of python -m inconsistency_jax.train (config + checkpoints)")
  parser.add_argument("--which", choices=("latest", "best"), default=None,
                      help="checkpoint of the workdir (default: its config's eval.checkpoint)")
  parser.add_argument("--out", default=None, metavar="DIR",
                      help="output folder (default: <video name>_explain beside the video)")
  parser.add_argument("--top-k", type=int, default=3, help="windows to flag per track")
  parser.add_argument("--threshold", type=float, default=None,
                      help="score below which the video is called fake (none: no verdict)")
  parser.add_argument("--people-count", choices=("faithful", "robust"), default="robust",
                      help="faces to explain: robust (every confidently detected face) or"
                           " faithful (the authors' dataset rule)")
  parser.add_argument("--verbose", action="store_true")
  return parser.parse_args(argv)


@cli_errors.command(user_errors={
    ExplainError: cli_errors.EXIT_USAGE, inference.CheckpointNotFoundError: cli_errors.EXIT_USAGE,
    inference.CheckpointMismatchError: cli_errors.EXIT_USAGE})
def main(argv=None) -> int:
  from data import logs
  args = parse_args(argv)
  logs.setup(args.verbose)
  video = cli_errors.existing(args.video, "VIDEO", "file")
  out = pathlib.Path(args.out) if args.out else video.with_name(video.stem + "_explain")
  cli_errors.writable_dir(out)  # before loading, tracking and scoring
  summary = explain_video(str(video), args.checkpoint, out, which=args.which,
                          top_k=args.top_k, threshold=args.threshold,
                          people_count=args.people_count)
  s = summary["score"]
  log.info("score %.3f (identity %.3f, audio-video %s) on track %d; report: %s",
           s["total"], s["intra"], "n/a" if s["cross"] is None else f"{s['cross']:.3f}",
           s["track"], out / "report.html")
  return 0


if __name__ == "__main__":
  sys.exit(main())
