"""Small face-track records with known content for the inconsistency detector's tests.

Every identity has its own face colour and texture; a "mouth" bar opens with the loudness of
the track's audio (so audio and video agree), and frame k carries the marker value 2k in a
corner block, while the audio is a slow ramp of time plus a tone, so tests can check which
frames and which audio samples a window holds.
"""
from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import cv2
import numpy as np

from data import constants, records

SIZE = constants.IDENTITY_FACE_SIZE


def identity_colour(identity: int) -> np.ndarray:
  rng = np.random.default_rng(1000 + identity)
  return rng.uniform(40, 215, 3)


def envelope(num_frames: int, seed: int) -> np.ndarray:
  """Per-frame mouth opening / loudness in [0, 1], smooth over a few frames."""
  rng = np.random.default_rng(seed)
  raw = rng.uniform(0, 1, num_frames + 6)
  return np.convolve(raw, np.ones(5) / 5, mode="same")[3:3 + num_frames].clip(0, 1)


def track_arrays(identity: int, num_frames: int, *, seed: int = 0, audio: bool = True,
                 mouth: Optional[np.ndarray] = None, sound: Optional[np.ndarray] = None,
                 face_identity: Optional[Sequence[int]] = None) -> records.TrackArrays:
  """One track of `identity`. `mouth` / `sound` override the opening and loudness envelopes
  (desynchronised fakes); `face_identity` gives the identity shown per frame (drift fakes)."""
  env = envelope(num_frames, seed)
  mouth = env if mouth is None else mouth
  sound = env if sound is None else sound
  faces = np.empty((num_frames, SIZE, SIZE, 3), np.uint8)
  yy, xx = np.mgrid[0:SIZE, 0:SIZE]
  for k in range(num_frames):
    shown = identity if face_identity is None else face_identity[k]
    colour = identity_colour(shown)
    stripes = 30 * np.sin(xx * (0.08 + 0.03 * (shown % 5)) + yy * 0.05 * (shown % 3))
    face = colour[None, None, :] + stripes[..., None]
    opening = int(4 + 24 * mouth[k])
    face[80 - opening // 2:80 + opening // 2, 36:76] = 20
    face[:16, :16] = 2 * k  # frame marker, one 16x16 JPEG block
    faces[k] = np.clip(face, 0, 255).astype(np.uint8)
  timestamps = np.arange(num_frames) / constants.FPS
  waveform = None
  if audio:
    t = np.arange(int(round(num_frames / constants.FPS * constants.SAMPLE_RATE)))
    t = t / constants.SAMPLE_RATE
    loudness = np.interp(t, timestamps, sound)
    waveform = (0.02 * t + 0.4 * loudness * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
  rng = np.random.default_rng(seed + 7)
  landmarks = rng.uniform(50, 170, (1, records.NUM_LANDMARKS, 3)) + np.cumsum(
      rng.normal(0, 0.5, (num_frames, 1, 3)), axis=0)
  return records.TrackArrays(
      frames_224=np.stack([cv2.resize(f, (constants.FACE_SIZE,) * 2) for f in faces]),
      frames_112=faces, timestamps=timestamps, detected=np.ones(num_frames, bool),
      landmarks=landmarks.astype(np.float32), fps=constants.FPS, audio=waveform)


def meta(video_id: str, identity: str, label: int = constants.REAL, **kw) -> records.TrackMetadata:
  return records.TrackMetadata(video_id=video_id, dataset=kw.pop("dataset", "synthetic"),
                               label=label, identity=identity, source_id=identity, **kw)


def write_shards(directory: pathlib.Path, tracks: Sequence[tuple], shards: int = 2,
                 prefix: str = "train") -> list[str]:
  """`tracks`: (TrackArrays, TrackMetadata) pairs, dealt round-robin over `shards` files."""
  directory = pathlib.Path(directory)
  paths = [directory / records.shard_name(prefix, i, shards) for i in range(shards)]
  serialized = [records.serialize_track(a, m, jpeg_quality=95) for a, m in tracks]
  for i, path in enumerate(paths):
    with records.ShardWriter(path) as writer:
      for record in serialized[i::shards]:
        writer.write(record)
  return [str(p) for p in paths]


def real_set(directory: pathlib.Path, identities: int = 6, tracks_per_identity: int = 2,
             num_frames: int = 60, shards: int = 2, first_seed: int = 0) -> list[str]:
  """Real tracks of `identities` identities (id000..)."""
  tracks = []
  for i in range(identities):
    for j in range(tracks_per_identity):
      seed = first_seed + 100 * i + j
      tracks.append((track_arrays(i, num_frames + 7 * j, seed=seed),
                     meta(f"id{i:03d}/v{j}", f"id{i:03d}", split="train")))
  return write_shards(directory, tracks, shards)


# ----------------------------------------------------------------------------------------------
# Shared by the training, evaluation and explanation tests


def smoke_config(root, **overrides):
  """configs/synthetic_tiny.py:smoke on records under `root` (train/, val/, test/)."""
  from inconsistency_jax.configs import synthetic_tiny
  config = synthetic_tiny.get_config("smoke")
  config.data.root = str(root)
  for key, value in overrides.items():
    target = config
    *parents, leaf = key.split(".")
    for parent in parents:
      target = target[parent]
    target[leaf] = value
  return config


def untrained_workdir(path, config):
  """A workdir holding config.json and a step-0 checkpoint of freshly initialised weights."""
  import jax
  from data import workdir as workdir_lib
  from inconsistency_jax import input_pipeline, train
  spec = input_pipeline.WindowSpec.from_model_config(config.model)
  state = train.create_train_state(config, train.create_model(config), spec,
                                   jax.random.PRNGKey(0))
  work = workdir_lib.Workdir(path, config)
  work.save(0, jax.device_get(train._checkpoint_tree(state)))  # noqa: SLF001
  work.close()
  return path
