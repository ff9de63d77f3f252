r"""Is this video fake, which face, and when? ``python -m fakeout_jax.predict VIDEO``.

  python -m fakeout_jax.predict VIDEO --checkpoint CKPT [--config CONFIG] [--out DIR]
      [--threshold 0.5] [--num-clips N]

CKPT: a finetune workdir (its config.json is used unless --config is given), a folder written by
``python -m fakeout_jax.convert`` (the default config with the model its conversion.json
names), or FakeOut's released pickle (then the default config: the released TSM-50x2 V&A
model). The checkpoint is checked against the config (model keys, variable shapes) before the
video is decoded; a mismatch is one line naming both (exit 2). The video walks the same path as
the data sets: face tracking
(data.facetrack), one record per face track, the evaluation sampler (N clips per track at
linspace offsets), the model; clip scores -> track score (mean) -> video score (max over tracks).

Writes OUT/<video>.json (verdict, scores per track and clip with time ranges) and
OUT/<video>.html (a self-contained report: verdict, score timeline per track, face thumbnails).
A video without audio is scored with the released code's silent input (an all-zero spectrogram),
with a warning: a video-only (V) model is the better choice for silent videos.
"""
from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys
from typing import Optional

import jax
import ml_collections
import numpy as np

from data import cli_errors
from data import constants
from data import records
from data import report
from data import video as video_lib
from data import workdir as workdir_lib
from fakeout_jax import checkpoints
from fakeout_jax import input_pipeline
from fakeout_jax import models
from fakeout_jax import state

log = logging.getLogger(__name__)


def load_config(checkpoint: str, config_path: Optional[str]) -> ml_collections.ConfigDict:
  """The run's own config (workdir), a config file, or the released model's default with the
  model a converted checkpoint carries (conversion.json); a config file must agree with the
  checkpoint's own model (state.ConfigError naming both, before anything is decoded)."""
  if not pathlib.Path(checkpoint).exists():
    raise FileNotFoundError(f"--checkpoint {checkpoint} does not exist")
  if config_path:
    from fakeout_jax import configs
    config = configs.load(config_path)
    state.check_model_config(config, checkpoint, f"--config {config_path}")
    return config
  carried = state.carried_model_config(checkpoint)
  saved = pathlib.Path(checkpoint) / "config.json"
  if saved.is_file():
    return ml_collections.ConfigDict(json.loads(saved.read_text()))
  from fakeout_jax.configs import default
  config = default.get_config()
  if carried is not None:
    config.model = ml_collections.ConfigDict(carried)
  return config


def track_examples(tracks, config) -> list[dict]:
  """Each track through the record format and the evaluation sampler (numpy dicts)."""
  import tensorflow as tf
  out = []
  for track in tracks:
    arrays = records.TrackArrays(
        frames_224=track.frames_224, timestamps=track.timestamps, detected=track.detected,
        fps=track.fps, audio=track.audio if track.has_audio else None)
    meta = records.TrackMetadata(video_id=track.video_id, dataset="predict",
                                 label=constants.REAL, track_index=track.track_index)
    parsed = records.parse_track(tf.constant(records.serialize_track(arrays, meta)))
    example = jax.tree_util.tree_map(lambda x: x.numpy(),
                                     input_pipeline.eval_example(parsed, config.input))
    length = len(track.timestamps)
    span = config.input.num_frames * config.input.frame_stride
    starts = input_pipeline.linspace_starts(length, span, config.input.eval_num_clips).numpy()
    example["clip_ranges"] = [
        (float(track.timestamps[s]),
         float(track.timestamps[min(length - 1, s + span - 1)] + 1.0 / track.fps))
        for s in starts]
    example["thumbnails"] = [track.frames_224[min(length - 1, s + span // 2)] for s in starts]
    out.append(example)
  return out


def predict(video_path: str, checkpoint: str, config: ml_collections.ConfigDict,
            out_dir: str, threshold: float = 0.5, people_count: str = "robust") -> dict:
  from data import facetrack
  variables = state.load_variables(config, checkpoint, which="best")
  model = models.create_model(config.model)
  apply = jax.jit(lambda v, video, audio: model.apply(v, video, audio, train=False)["logits"])
  tracks = facetrack.track_video(video_path, people_count=people_count)
  use_audio = config.model.modality == "video_audio"
  warnings = []
  if use_audio and not any(t.has_audio for t in tracks):
    warnings.append("the video has no audio: scored with a silent (all-zero) spectrogram as the"
                    " released code does; prefer a video-only (V) model for silent videos")
  result_tracks = []
  for track, example in zip(tracks, track_examples(tracks, config)):
    audio = example["audio"] if use_audio else None
    logits = np.asarray(apply(variables, example["video"], audio))
    clip_scores = np.asarray(jax.nn.softmax(logits)[:, 1])
    result_tracks.append({
        "track": track.track_index, "name": track.name, "score": float(clip_scores.mean()),
        "frames": track.num_frames, "detected_fraction": round(track.detected_fraction, 3),
        "has_audio": track.has_audio,
        "clips": [{"start": a, "end": b, "score": float(s)}
                  for (a, b), s in zip(example["clip_ranges"], clip_scores)],
        "_thumbnails": example["thumbnails"]})
  worst = max(result_tracks, key=lambda t: t["score"])
  verdict = "fake" if worst["score"] >= threshold else "real"
  result = {"video": str(video_path), "verdict": verdict, "score": worst["score"],
            "threshold": threshold, "deciding_track": worst["track"], "warnings": warnings,
            "checkpoint": str(checkpoint), "model": config.get("name", ""),
            "settings": {"people_count": people_count},
            "tracks": [{k: v for k, v in t.items() if not k.startswith("_")}
                       for t in result_tracks]}
  out = pathlib.Path(out_dir)
  stem = pathlib.Path(video_path).stem
  out.mkdir(parents=True, exist_ok=True)
  (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
  report.write(out / f"{stem}.html", render_report(result, result_tracks))
  for warning in warnings:
    log.warning("%s", warning)
  return result


def render_report(result: dict, tracks: list[dict]) -> str:
  fig, ax = report.figure(figsize=(9, 3))
  for t in tracks:
    centres = [(c["start"] + c["end"]) / 2 for c in t["clips"]]
    ax.plot(centres, [c["score"] for c in t["clips"]], "o-", label=f"face {t['track'] + 1}")
  ax.axhline(result["threshold"], color="k", ls=":", lw=1, label="threshold")
  ax.set(xlabel="time (s)", ylabel="fake probability", ylim=(-0.02, 1.02),
         title="Clip scores over time")
  ax.legend(fontsize=8)
  timeline = report.img(fig, "score timeline")
  verdict = (f"<div class='verdict {result['verdict']}'>Verdict: <b>{result['verdict']}</b> "
             f"&mdash; score {result['score']:.3f} (threshold {result['threshold']}), decided "
             f"by face {result['deciding_track'] + 1}</div>")
  warnings = "".join(f"<p class='small'>&#9888; {w}</p>" for w in result["warnings"])
  sections = [("", verdict + warnings), ("Timeline", timeline)]
  for t in tracks:
    thumbs = "".join(report.img(th, title=f"{c['start']:.1f}-{c['end']:.1f} s: {c['score']:.3f}")
                     for th, c in zip(t["_thumbnails"], t["clips"]))
    rows = [(f"{c['start']:.2f}-{c['end']:.2f} s", f"{c['score']:.3f}") for c in t["clips"]]
    sections.append((f"Face {t['track'] + 1}: score {t['score']:.3f} "
                     f"({t['frames']} frames, face seen in {100 * t['detected_fraction']:.0f}%)",
                     f"<div class='thumbs'>{thumbs}</div>" +
                     report.table(["clip", "fake probability"], rows)))
  return report.page(f"FakeOut report: {pathlib.Path(result['video']).name}", sections,
                     subtitle=f"model {result['model']} from {result['checkpoint']}")


@cli_errors.command(user_errors=(FileNotFoundError, state.ConfigError, checkpoints.CheckpointError,
                                 workdir_lib.WorkdirError))
def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m fakeout_jax.predict",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("video")
  parser.add_argument("--checkpoint", required=True,
                      help="finetune workdir, converted folder or FakeOut pickle")
  parser.add_argument("--config", default=None, help="config file (default: the workdir's)")
  parser.add_argument("--out", default="predictions", help="output folder")
  parser.add_argument("--threshold", type=float, default=0.5)
  parser.add_argument("--num-clips", type=int, default=None, help="clips per face track")
  parser.add_argument("--people-count", choices=("faithful", "robust"), default="robust",
                      help="faces to score: robust (every confidently detected face) or"
                           " faithful (the authors' dataset rule)")
  parser.add_argument("--multi-face-audio", choices=("own", "released"), default="own",
                      help="audio of a face in a video with several faces: its own (default) or"
                           " silence, as the released FakeOut inference gives @partN tracks")
  parser.add_argument("-v", "--verbose", action="store_true")
  args = parser.parse_args(argv)
  from data import facetrack, logs
  logs.setup(args.verbose)
  cli_errors.existing(args.video, "VIDEO", "file")
  cli_errors.writable_dir(args.out)  # before loading, tracking and scoring
  config = load_config(args.checkpoint, args.config)
  if args.num_clips:
    config.input.eval_num_clips = args.num_clips
  config.input.multi_face_audio = args.multi_face_audio
  try:
    result = predict(args.video, args.checkpoint, config, args.out, args.threshold,
                     people_count=args.people_count)
  except facetrack.NoFaceError as e:
    print(f"error: no face found in {args.video}: {e}", file=sys.stderr)
    return 2
  except video_lib.VideoError as e:
    print(f"error: cannot read {args.video}: {e}", file=sys.stderr)
    return 2
  print(f"{result['verdict']}: score {result['score']:.3f} (threshold {result['threshold']}), "
        f"face {result['deciding_track'] + 1} of {len(result['tracks'])}; report in "
        f"{pathlib.Path(args.out) / pathlib.Path(args.video).stem}.html")
  return 0


if __name__ == "__main__":
  sys.exit(main())
