r"""The evaluation studies of the FakeOut paper, run by ``python -m fakeout_jax.evaluate``.

* Fig. 14 (``--num-clips 1,3,5,7,9``): the whole evaluation once per number of clips N per
  track (the linspace offsets change with N): sweep_num_clips.json, fig14_auc_vs_num_clips.png.
* Fig. 13 (``--audio-shifts=-1,-0.5,0,0.5,1``): the whole evaluation once per audio shift
  (input.eval_audio_shift_seconds): sweep_audio_shift.json, fig13_score_vs_audio_shift.png
  (mean score of the real videos with audio, and AUC, against the shift).
* Fig. 12 (``--umap``): a UMAP of the clips' classifier inputs, coloured by test set and
  category: fig12_umap.png and clip_embeddings.npz; needs umap-learn, skipped with a message
  without it.

Each sweep writes its metrics per value and test set and the paper cells its config fills
(``{num_clips}`` / ``{audio_shift}`` in a cell spec take each value), which
``python -m fakeout_jax.tables`` collects like metrics.json.
"""
from __future__ import annotations

import copy
import logging
import pathlib
from typing import Callable, Optional, Sequence

import ml_collections
import numpy as np

from data import report
from fakeout_jax import scoring
from fakeout_jax import state

log = logging.getLogger(__name__)

UMAP_MISSING = ("Fig. 12 (UMAP of clip embeddings) skipped: umap-learn is not installed. "
                "Install it (pip install umap-learn) and re-run with --umap.")


def sweep(scorer: scoring.Scorer, config, files: dict, out_dir: pathlib.Path, *, name: str,
          values: Sequence, apply: Callable[[ml_collections.ConfigDict, object], None],
          label: Callable[[object], str]) -> dict:
  """Evaluates every test set once per value; writes sweep_<name>.json and per-value scores.

  Metrics need both classes only where they can have them: a set of real videos alone still
  gets its score summary (Fig. 13).
  """
  results, failed, cells = {}, {}, []
  for value in values:
    c = copy.deepcopy(config)
    with c.unlocked():
      apply(c, value)
    log.info("%s = %s", name, label(value))
    directory = out_dir / f"sweep_{name}" / label(value)
    directory.mkdir(parents=True, exist_ok=True)
    results[label(value)], _, failures = scoring.evaluate_sets(
        scorer, c, files, directory, need_both_classes=False)
    for set_name, reason in failures.items():
      failed[f"{label(value)}/{set_name}"] = reason
    cells += scoring.paper_cells(c, results[label(value)])
  summary = {"checkpoint": scorer.checkpoint, "config": config.get("name", ""),
             "parameter": name, "values": [float(v) for v in values], "results": results,
             "failed": failed, "paper_cells": cells}
  scoring.write_json(out_dir / f"sweep_{name}.json", summary)
  return summary


def _set_num_clips(c, n):
  c.input.eval_num_clips = int(n)


def _set_audio_shift(c, seconds):
  c.input.eval_audio_shift_seconds = float(seconds)


def num_clips_sweep(scorer, config, files, out_dir, values: Sequence[int]) -> dict:
  """Fig. 14: AUC against the number of clips per track."""
  if any(int(n) < 1 for n in values):
    raise state.ConfigError(f"--num-clips must be positive integers, got {list(values)}")
  summary = sweep(scorer, config, files, out_dir, name="num_clips", values=values,
                  apply=_set_num_clips, label=lambda n: f"N={int(n)}")
  _plot_sweep(summary, out_dir / "fig14_auc_vs_num_clips.png", [("auc", "ROC-AUC")],
              xlabel="clips per face track (N)",
              title="Fig. 14: AUC against the number of clips")
  return summary


def audio_shift_sweep(scorer, config, files, out_dir, values: Sequence[float]) -> dict:
  """Fig. 13: scores of real videos (and AUC) against a shift of the audio."""
  check_audio_model(config)
  summary = sweep(scorer, config, files, out_dir, name="audio_shift", values=values,
                  apply=_set_audio_shift, label=lambda s: f"{float(s):+.2f}s")
  _plot_sweep(summary, out_dir / "fig13_score_vs_audio_shift.png",
              [("scores/real_with_audio/mean", "mean score, real videos with audio"),
               ("auc", "ROC-AUC")],
              xlabel="audio shift (s; positive: audio from later in the track)",
              title="Fig. 13: scores against an audio shift")
  return summary


def check_audio_model(config) -> None:
  if config.model.modality != "video_audio":
    raise state.ConfigError("--audio-shifts needs a video-and-audio model (model.modality="
                            f"'video_audio'); this config's is {config.model.modality!r}")


def _plot_sweep(summary: dict, path: pathlib.Path, metrics: list[tuple[str, str]],
                xlabel: str, title: str) -> Optional[pathlib.Path]:
  fig, axes = report.figure(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
  labels = list(summary["results"])
  plotted = False
  for ax, (metric, ylabel) in zip(axes[0], metrics):
    sets = sorted({s for by_set in summary["results"].values() for s in by_set})
    for set_name in sets:
      xs, ys = [], []
      for x, key in zip(summary["values"], labels):
        value = summary["results"][key].get(set_name, {})
        for part in metric.split("/"):
          value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
          xs.append(x)
          ys.append(value)
      if xs:
        ax.plot(xs, ys, "o-", label=set_name)
        plotted = True
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)
  fig.suptitle(title)
  fig.tight_layout()
  if plotted:
    fig.savefig(path, dpi=110)
  return path if plotted else None


def umap_figure(scorer: scoring.Scorer, config, files: dict, out_dir: pathlib.Path,
                max_tracks: int = 2000, seed: int = 0) -> Optional[pathlib.Path]:
  """Fig. 12: a 2-D UMAP of every clip's classifier input, coloured by test set and category.

  Returns None, with UMAP_MISSING logged, when umap-learn is not installed.
  """
  try:
    import umap  # pylint: disable=import-outside-toplevel
  except ImportError:
    log.warning("%s", UMAP_MISSING)
    return None
  embeddings, groups = [], []
  for name, record_set in config.data.test.items():
    clips, meta = scorer.clip_embeddings(config, files[name], record_set, max_tracks)
    embeddings.append(clips.reshape(-1, clips.shape[-1]))
    groups += [f"{name}/{m['category']}" for m in meta for _ in range(clips.shape[1])]
  features = np.concatenate(embeddings)
  np.savez_compressed(out_dir / "clip_embeddings.npz", embeddings=features,
                      groups=np.array(groups))
  points = umap.UMAP(n_components=2, random_state=seed).fit_transform(features)
  fig, ax = report.figure(figsize=(6, 5))
  for group in sorted(set(groups)):
    keep = np.array([g == group for g in groups])
    ax.scatter(points[keep, 0], points[keep, 1], s=6, alpha=0.6, label=group)
  ax.set(title="Fig. 12: UMAP of clip embeddings", xticks=[], yticks=[])
  ax.legend(fontsize=7, markerscale=2)
  fig.tight_layout()
  path = out_dir / "fig12_umap.png"
  fig.savefig(path, dpi=110)
  return path
