r"""Table 1: how much identity does facial motion alone carry, in real and in fake videos?

  python -m inconsistency_jax.motion_identity --records /data/records/fakeavceleb/all \
      --out runs/motion_identity [--clip-frames 30] [--epochs 40] [--seed 0]

Motion is what is left of a face track without appearance or pose: the differences of the 3-D
FaceMesh landmarks (in the 224-px similarity-aligned frame the records store, so in-plane
rotation, scale and translation are already removed) between consecutive frames, [478 x 3] per
frame. Tracks are cut into non-overlapping clips of --clip-frames displacements; the first
--train-fraction of every track's clips are for training, the rest for testing (no clip is in
both). A small temporal CNN (models/motion_cnn.py) learns to name the identity of a clip.

Identities: the record's ``identity`` field (FakeAVCeleb: the ``source`` id, whose video was
manipulated, so the motion in a face-swap or lip-sync fake still mostly belongs to it). Only
identities with clips of both real and fake videos are kept, so the four experiments share the
same classes; fakes are the --fake-categories (default: those with a manipulated video).

Four runs give the 2 x 2 table: train on real or fake training clips, test on real and fake
test clips; the cells are top-1 accuracies (chance = 1 / identities). Written to --out:
table1.md / table1.csv, results.json (accuracies, clip and identity counts, settings).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import sys
from typing import Sequence

import numpy as np

from data import cli_errors
from data import constants
from data import protocols
from data import records

log = logging.getLogger(__name__)

FAKE_VIDEO_PREFIXES = ("FV",)


@dataclasses.dataclass
class Clips:
  """Motion clips [n, K, P * 3] with their identity index and train/test flag."""
  x: np.ndarray
  identity: np.ndarray
  train: np.ndarray

  def part(self, train: bool) -> "Clips":
    keep = self.train == train
    return Clips(self.x[keep], self.identity[keep], self.train[keep])


def motion_clips(landmarks: np.ndarray, clip_frames: int) -> np.ndarray:
  """[L, P, 3] landmarks -> [n, clip_frames, P * 3] clips of frame-to-frame displacements."""
  motion = np.diff(np.asarray(landmarks, np.float32), axis=0).reshape(len(landmarks) - 1, -1)
  n = len(motion) // clip_frames
  return motion[:n * clip_frames].reshape(n, clip_frames, motion.shape[1])


def load_tracks(files: Sequence[str], fake_categories: Sequence[str] | None) -> list[dict]:
  """identity, label, category and landmarks [L, 478, 3] of every track with landmarks."""
  out, skipped = [], collections.Counter()
  for record in records.read_tracks(files):
    label = int(record["label"])
    category = record["category"].decode()
    if label == constants.FAKE and not _is_wanted_fake(category, fake_categories):
      skipped["fake category not studied"] += 1
      continue
    raw = record["frame/landmarks"]
    if len(raw) == 0:
      skipped["no landmarks"] += 1
      continue
    landmarks = np.stack([np.frombuffer(b, "<f2").reshape(records.NUM_LANDMARKS, 3)
                          for b in raw]).astype(np.float32)
    out.append({"identity": record["identity"].decode(), "label": label, "category": category,
                "video_id": record["video/id"].decode(), "landmarks": landmarks})
  if skipped:
    log.info("tracks left out: %s", dict(skipped))
  return out


def _is_wanted_fake(category: str, wanted: Sequence[str] | None) -> bool:
  if wanted:
    return category in wanted
  return category.startswith(FAKE_VIDEO_PREFIXES)


def build_clips(tracks: list[dict], clip_frames: int, train_fraction: float
                ) -> tuple[dict[int, Clips], list[str]]:
  """Clips per label (0 real, 1 fake) over the identities present in both, and their names."""
  by_label: dict[int, set] = collections.defaultdict(set)
  per_track = []
  for track in tracks:
    clips = motion_clips(track["landmarks"], clip_frames)
    if len(clips) >= 2:
      per_track.append((track, clips))
      by_label[track["label"]].add(track["identity"])
  identities = sorted(by_label[constants.REAL] & by_label[constants.FAKE])
  if len(identities) < 2:
    raise protocols.EvaluationError(
        f"only {len(identities)} identities have at least two clips of {clip_frames} frames in "
        "both real and fake videos; the study needs at least 2 (use shorter --clip-frames or "
        "more data)")
  index = {name: i for i, name in enumerate(identities)}
  parts: dict[int, list] = {constants.REAL: [], constants.FAKE: []}
  for track, clips in per_track:
    if track["identity"] not in index:
      continue
    n_train = min(len(clips) - 1, max(1, int(round(train_fraction * len(clips)))))
    flags = np.arange(len(clips)) < n_train
    parts[track["label"]].append((clips, np.full(len(clips), index[track["identity"]]), flags))
  out = {label: Clips(np.concatenate([p[0] for p in items]), np.concatenate([p[1] for p in items]),
                      np.concatenate([p[2] for p in items])) for label, items in parts.items()}
  return out, identities


def train_classifier(train: Clips, num_classes: int, *, epochs: int, batch_size: int,
                     learning_rate: float, seed: int):
  """Trains models.motion_cnn.MotionCNN; returns predict(x) -> class indices."""
  import jax
  import jax.numpy as jnp
  import optax
  from inconsistency_jax.models import motion_cnn
  mean = train.x.mean(axis=(0, 1), keepdims=True)
  std = train.x.std(axis=(0, 1), keepdims=True) + 1e-6
  model = motion_cnn.MotionCNN(num_classes=num_classes)
  rng = jax.random.PRNGKey(seed)
  params = model.init(rng, jnp.zeros((1,) + train.x.shape[1:]))["params"]
  tx = optax.adamw(learning_rate, weight_decay=1e-4)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y, key):
    def loss_fn(p):
      logits = model.apply({"params": p}, x, train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  x = (train.x - mean) / std
  order_rng = np.random.default_rng(seed)
  batch_size = min(batch_size, len(x))
  for epoch in range(epochs):
    order = order_rng.permutation(len(x))
    for b in range(len(x) // batch_size):
      picked = order[b * batch_size:(b + 1) * batch_size]
      params, opt_state, loss = step(params, opt_state, x[picked], train.identity[picked],
                                     jax.random.fold_in(rng, epoch * 100_000 + b))
    if epoch == epochs - 1:
      log.info("last epoch loss %.3f", float(loss))

  predict_logits = jax.jit(lambda p, x: model.apply({"params": p}, x))

  def predict(clips: np.ndarray) -> np.ndarray:
    return np.asarray(jnp.argmax(predict_logits(params, (clips - mean) / std), axis=-1))
  return predict


def run_study(files: Sequence[str], *, clip_frames: int = 30, train_fraction: float = 0.7,
              epochs: int = 40, batch_size: int = 64, learning_rate: float = 1e-3,
              seed: int = 0, fake_categories: Sequence[str] | None = None) -> dict:
  tracks = load_tracks(files, fake_categories)
  clips, identities = build_clips(tracks, clip_frames, train_fraction)
  names = {constants.REAL: "real", constants.FAKE: "fake"}
  accuracy = {}
  for train_label, train_name in names.items():
    predict = train_classifier(clips[train_label].part(True), len(identities), epochs=epochs,
                               batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    accuracy[train_name] = {}
    for test_label, test_name in names.items():
      test = clips[test_label].part(False)
      accuracy[train_name][test_name] = float(np.mean(predict(test.x) == test.identity))
  return {"accuracy": accuracy, "identities": len(identities), "chance": 1 / len(identities),
          "clips": {names[k]: {"train": int(v.train.sum()), "test": int((~v.train).sum())}
                    for k, v in clips.items()},
          "settings": {"clip_frames": clip_frames, "train_fraction": train_fraction,
                       "epochs": epochs, "batch_size": batch_size,
                       "learning_rate": learning_rate, "seed": seed,
                       "fake_categories": list(fake_categories or []) or "FV*"}}


def table(results: dict) -> protocols.Table:
  rows = {f"train on {train}": {f"test on {test}": acc for test, acc in tests.items()}
          for train, tests in results["accuracy"].items()}
  note = (f"Top-1 identity accuracy from landmark motion alone; {results['identities']} "
          f"identities (chance {100 * results['chance']:.1f}%), clips of "
          f"{results['settings']['clip_frames']} frame-to-frame displacements.")
  return protocols.Table("Table 1: identity from motion", ["test on real", "test on fake"], rows,
                         note=note)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m inconsistency_jax.motion_identity",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--records", nargs="+", required=True,
                      help="record sets (folders, shard files or globs) with real and fake tracks")
  parser.add_argument("--out", required=True, help="output folder")
  parser.add_argument("--clip-frames", type=int, default=30)
  parser.add_argument("--train-fraction", type=float, default=0.7)
  parser.add_argument("--epochs", type=int, default=40)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--learning-rate", type=float, default=1e-3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--fake-categories", default="",
                      help="comma-separated fake categories (default: every FV* category)")
  return parser.parse_args(argv)


@cli_errors.command(user_errors=(protocols.EvaluationError, FileNotFoundError,
                                 records.RecordError))
def main(argv=None) -> int:
  from data import logs
  args = parse_args(argv)
  logs.setup()
  wanted = [c for c in args.fake_categories.split(",") if c]
  out = cli_errors.writable_dir(args.out)
  results = run_study(records.list_shards(args.records), clip_frames=args.clip_frames,
                      train_fraction=args.train_fraction, epochs=args.epochs,
                      batch_size=args.batch_size, learning_rate=args.learning_rate,
                      seed=args.seed, fake_categories=wanted or None)
  rendered = table(results)
  rendered.save(out, "table1")
  (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
  log.info("\n%s", rendered.markdown())
  return 0


if __name__ == "__main__":
  sys.exit(main())
