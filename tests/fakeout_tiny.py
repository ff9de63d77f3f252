"""A tiny FakeOut run for tests: its config and small record shards with a learnable signal."""
import numpy as np

from data import constants, records
from fakeout_jax.configs import synthetic_tiny


def write_records(directory, num_real=6, num_fake=6, frames=20, seed=0):
  """Shards where fakes carry a visible square and real audio differs: easy to learn."""
  rng = np.random.default_rng(seed)
  directory.mkdir(parents=True, exist_ok=True)
  labels = [0] * num_real + [1] * num_fake
  for shard in range(2):
    with records.ShardWriter(directory / records.shard_name("s", shard, 2)) as writer:
      for i in range(shard, len(labels), 2):
        label = labels[i]
        frames_224 = rng.integers(80, 120, (frames, 224, 224, 3), dtype=np.uint8)
        if label:
          frames_224[:, 60:160, 60:160] = 220
        t = np.arange(int(frames / constants.FPS * constants.SAMPLE_RATE)) / constants.SAMPLE_RATE
        audio = 0.3 * np.sin(2 * np.pi * (300 if label else 1200) * t)
        track = records.TrackArrays(frames_224=frames_224, timestamps=np.arange(frames) /
                                    constants.FPS, detected=np.ones(frames, bool),
                                    fps=constants.FPS, audio=audio.astype(np.float32))
        writer.write(records.serialize_track(track, records.TrackMetadata(
            video_id=f"v{i:02d}", dataset="tiny", label=label,
            category="fake" if label else "real", method="square" if label else "")))
  return directory


def write_av_records(directory, num_tracks=8, frames=20, seed=0):
  """Real tracks whose audio matches their video: track k is lit at level k and hums at tone k,
  so only a pairing of each clip's video with its own audio explains both (what NCE learns)."""
  rng = np.random.default_rng(seed)
  directory.mkdir(parents=True, exist_ok=True)
  for shard in range(2):
    with records.ShardWriter(directory / records.shard_name("av", shard, 2)) as writer:
      for k in range(shard, num_tracks, 2):
        level = 30 + int(200 * k / max(1, num_tracks - 1))
        frames_224 = np.clip(rng.normal(level, 12, (frames, 224, 224, 3)), 0, 255).astype(
            np.uint8)
        t = np.arange(int(frames / constants.FPS * constants.SAMPLE_RATE)) / constants.SAMPLE_RATE
        audio = 0.3 * np.sin(2 * np.pi * (200 * 1.5 ** k) * t)
        track = records.TrackArrays(frames_224=frames_224, timestamps=np.arange(frames) /
                                    constants.FPS, detected=np.ones(frames, bool),
                                    fps=constants.FPS, audio=audio.astype(np.float32))
        writer.write(records.serialize_track(track, records.TrackMetadata(
            video_id=f"av{k:02d}", dataset="tiny", label=0, category="real")))
  return directory


def config(root, **train):
  c = synthetic_tiny.get_config()
  c.data.root = str(root)
  c.data.train.path = "train"
  c.data.val.path = "val"
  c.data.test = {"tiny": c.data.val}
  c.input.num_frames, c.input.image_size, c.input.eval_num_clips = 4, 32, 2
  c.train.batch_size, c.eval.batch_size = 4, 2
  c.train.num_epochs = 2
  c.train.checkpoint_every_steps = 2
  c.train.log_every_steps = 1
  c.train.update(train)
  return c


def pretrain_config(root, **train):
  """The tiny run's MMV pre-training: same model and input, reals only, no oversampling."""
  from fakeout_jax.configs import pretrain_synthetic_tiny
  tiny = config(root)
  c = pretrain_synthetic_tiny.get_config()
  c.model, c.input = tiny.model, tiny.input
  c.input.oversample = "none"
  c.pretrain.negatives = "batch"   # MMV's default (the demo's same-track variant needs K > 1)
  c.pretrain.center_within_track = False   # needs the same-track negatives
  c.data.root = str(root)
  c.data.train.path, c.data.val.path = "train", "val"
  c.train.batch_size = 4
  c.train.num_epochs = 5
  c.train.warmup_steps = 1
  c.train.checkpoint_every_steps = 2
  c.train.log_every_steps = 1
  c.train.update(train)
  return c
