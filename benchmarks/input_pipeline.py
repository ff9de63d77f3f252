"""FakeOut input pipeline speed: training clips/s from TFRecords, and record writing speed.

  python benchmarks/input_pipeline.py [--tracks 16] [--frames 120] [--batches 20] [--json r.json]

Writes `--tracks` synthetic face tracks (224x224 JPEG frames with texture, 44.1 kHz audio) as
records in a temporary folder, then measures on this machine:

* prepare_records_per_s: serialising tracks into records (JPEG encoding, audio PCM), excluding
  face tracking, in one process (= per core);
* train_clips_per_s: the training pipeline at the released sizes (32 frames x 224x224, stride 2,
  audio log-mel [183, 80], augmentation enabled, minority oversampling), tf.data using every
  core, on the default path: uint8 frames to the device, the augmentation left to the train step
  (input.augment_on='device'); divided by the number of cores for the per-core figure
  ``train_clips_per_s_per_core`` (target: >= 15 per core of host work);
* train_clips_per_cpu_s: the same clips divided by the CPU seconds this process spent on them
  (all threads): host work per core, which other jobs on the machine hardly change (the wall
  figure above counts their time too);
* host_float32_path: the former path (float32 frames, augmentation in tf.data on the host),
  measured in the same run, one pipeline at a time in the order uint8, float32, float32, uint8
  so that a load trend hits both; ``uint8_over_float32`` is the ratio of their clips/s;
* bytes_per_clip: what one training clip sends to the device on each path (video + audio);
* variants: training clips/s without augmentation, without audio, and without both (where the
  time goes);
* eval_tracks_per_s: the evaluation pipeline (5 clips per track);
* load_average: the machine's 1-minute load average before and after (other jobs share the
  cores: compare the two paths by their ratio, not across runs).

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import constants, records  # noqa: E402
from fakeout_jax import input_pipeline  # noqa: E402


def synthetic_track(rng, frames: int) -> records.TrackArrays:
  base = rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)
  image = np.kron(base, np.ones((4, 4, 1), np.uint8))  # 224x224, JPEG-realistic texture
  video = np.stack([np.roll(image, i, axis=1) for i in range(frames)])
  t = np.arange(int(frames / constants.FPS * constants.SAMPLE_RATE)) / constants.SAMPLE_RATE
  audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size))
  return records.TrackArrays(frames_224=video, timestamps=np.arange(frames) / constants.FPS,
                             detected=np.ones(frames, bool), fps=constants.FPS,
                             audio=audio.astype(np.float32))


VARIANTS = {"no_augment": {"augment": False}, "no_audio": {"use_audio": False},
            "decode_only": {"augment": False, "use_audio": False}}


def train_clips_per_s(files, config, args, return_batch: bool = False):
  ds = input_pipeline.train_dataset(files, config, batch_size=args.batch_size, seed=0,
                                    epoch=0).repeat()
  iterator = ds.as_numpy_iterator()
  next(iterator)  # graph building and first fill excluded
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(args.batches):
    batch = next(iterator)
  seconds = time.perf_counter() - start
  cpu_seconds = time.process_time() - cpu_start  # every thread of this process
  assert batch["video"].shape == (args.batch_size, 32, 224, 224, 3)
  del iterator, ds  # stop this pipeline's background work before the next one is timed
  clips = args.batches * args.batch_size
  speed = {"clips_per_s": clips / seconds, "clips_per_cpu_s": clips / cpu_seconds}
  return (speed, batch) if return_batch else speed


def bytes_per_clip(batch) -> int:
  """Bytes one clip of a training batch sends to the device (arrays the train step takes)."""
  return int(sum(batch[k].nbytes for k in ("video", "audio", "augment_seed") if k in batch)
             // len(batch["label"]))


def compare_paths(files, args) -> dict:
  """uint8 frames (augmented later on the device) vs the former float32 host-augmented path.

  One pipeline at a time (a tf.data pipeline keeps filling its buffers in the background, so
  two alive at once would steal each other's time), in the order A B B A so that a load trend
  hits both alike; each path's figure is the mean of its two runs."""
  paths = {"uint8_device_augment": "device", "float32_host_augment": "host"}
  runs, cpu_runs, sizes = {name: [] for name in paths}, {name: [] for name in paths}, {}
  for name in ("uint8_device_augment", "float32_host_augment", "float32_host_augment",
               "uint8_device_augment"):
    config = input_pipeline.get_config()
    config.augment_on = paths[name]
    speed, batch = train_clips_per_s(files, config, args, return_batch=True)
    runs[name].append(speed["clips_per_s"])
    cpu_runs[name].append(speed["clips_per_cpu_s"])
    sizes[name] = bytes_per_clip(batch)
  clips = {name: float(np.mean(values)) for name, values in runs.items()}
  cpu = {name: float(np.mean(values)) for name, values in cpu_runs.items()}
  return {"clips_per_s": clips, "clips_per_cpu_s": cpu, "runs": runs, "cpu_runs": cpu_runs,
          "bytes_per_clip": sizes,
          "uint8_over_float32": clips["uint8_device_augment"] / clips["float32_host_augment"],
          "uint8_over_float32_cpu": cpu["uint8_device_augment"] / cpu["float32_host_augment"],
          "bytes_float32_over_uint8": sizes["float32_host_augment"] /
          sizes["uint8_device_augment"]}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--tracks", type=int, default=16)
  parser.add_argument("--frames", type=int, default=120)
  parser.add_argument("--batch-size", type=int, default=8)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--json", "--out", dest="out", default=None, help="also write the JSON here")
  args = parser.parse_args(argv)
  rng = np.random.default_rng(0)
  cores = os.cpu_count() or 1
  result = {"cores": cores, "tracks": args.tracks, "frames_per_track": args.frames,
            "load_average_start": os.getloadavg()[0]}
  with tempfile.TemporaryDirectory() as tmp:
    tracks = [synthetic_track(rng, args.frames) for _ in range(args.tracks)]
    start = time.perf_counter()
    path = pathlib.Path(tmp) / records.shard_name("bench", 0, 1)
    with records.ShardWriter(path) as writer:
      for i, track in enumerate(tracks):
        writer.write(records.serialize_track(track, records.TrackMetadata(
            video_id=f"v{i}", dataset="bench", label=i % 2)))
    seconds = time.perf_counter() - start
    result["prepare_records_per_s"] = args.tracks / seconds
    result["prepare_frames_per_s"] = args.tracks * args.frames / seconds
    result["record_mb"] = path.stat().st_size / args.tracks / 1e6

    config = input_pipeline.get_config()  # augmentation enabled, uint8 path (the default)
    assert config.augment and config.augment_on == "device"
    files = [str(path)]
    paths = compare_paths(files, args)
    result["train_clips_per_s"] = paths["clips_per_s"]["uint8_device_augment"]
    result["train_clips_per_s_per_core"] = result["train_clips_per_s"] / cores
    result["train_clips_per_cpu_s"] = paths["clips_per_cpu_s"]["uint8_device_augment"]
    result["train_target_per_core"] = 15
    result["host_float32_path"] = {
        "train_clips_per_s": paths["clips_per_s"]["float32_host_augment"],
        "train_clips_per_s_per_core": paths["clips_per_s"]["float32_host_augment"] / cores,
        "train_clips_per_cpu_s": paths["clips_per_cpu_s"]["float32_host_augment"]}
    result["runs_clips_per_s"] = paths["runs"]
    result["runs_clips_per_cpu_s"] = paths["cpu_runs"]
    result["uint8_over_float32"] = paths["uint8_over_float32"]
    result["uint8_over_float32_cpu"] = paths["uint8_over_float32_cpu"]
    result["bytes_per_clip"] = paths["bytes_per_clip"]
    result["bytes_float32_over_uint8"] = paths["bytes_float32_over_uint8"]
    result["load_average_after_train"] = os.getloadavg()[0]
    # Where the time goes: the same pipeline without augmentation and/or audio.
    result["variants"] = {}
    for name, overrides in VARIANTS.items():
      variant = input_pipeline.get_config()
      variant.update(overrides)
      result["variants"][name] = train_clips_per_s(files, variant, args)["clips_per_s"]

    ds = input_pipeline.eval_dataset(files, config, batch_size=2)
    start = time.perf_counter()
    count = sum(int(b["mask"].sum()) for b in ds.as_numpy_iterator())
    result["eval_tracks_per_s"] = count / (time.perf_counter() - start)
  result["load_average_end"] = os.getloadavg()[0]
  text = json.dumps(result, indent=1)
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text)
  return result


if __name__ == "__main__":
  main()
