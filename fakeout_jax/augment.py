"""FakeOut's training augmentation on the device, inside the jitted train step (pure jax.numpy).

The input pipeline hands uint8 frames to the device (4x fewer bytes than float32) with one
``augment_seed`` per example, ``(epoch seed, example index)`` as int32[2]; here each clip gets
the paper's App. B.1 augmentation with ONE draw per clip (the whole clip together), each op with
its own probability: horizontal flip, brightness (delta uniform in +-max_delta), hue (delta
uniform in +-max_delta, in turns), then clipping to [0, 1] - the same ops, order and
distributions as the tf.data version this replaced (``input_pipeline.augment_on='host'`` keeps
that version for comparison; tests/test_fakeout_augment.py compares the two).

The draws are a function of the example's seed only, so a run resumed at any step augments the
remaining examples exactly as an uninterrupted run would.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

UINT8_SCALE = np.float32(1.0 / 255.0)  # tf.image.convert_image_dtype's uint8 -> float32 scale


@dataclasses.dataclass(frozen=True)
class AugmentParams:
  """The augmentation's probabilities and ranges (hashable: a static argument of jit/pmap)."""
  flip_prob: float = 0.5
  brightness_prob: float = 0.5
  brightness_max_delta: float = 32 / 255
  hue_prob: float = 0.5
  hue_max_delta: float = 0.2

  @classmethod
  def from_config(cls, c) -> "AugmentParams":
    """From an input config (fakeout_jax.input_pipeline.get_config)."""
    return cls(float(c.flip_prob), float(c.brightness_prob), float(c.brightness_max_delta),
               float(c.hue_prob), float(c.hue_max_delta))


def frames_to_float(video: jax.Array) -> jax.Array:
  """uint8 frames -> float32 in [0, 1] exactly as tf.image.convert_image_dtype scales them;
  float frames (evaluation inputs) pass through untouched."""
  if video.dtype == jnp.uint8:
    return video.astype(jnp.float32) * UINT8_SCALE
  return video


def adjust_hue(rgb: jax.Array, delta: jax.Array) -> jax.Array:
  """Rotates the hue of [..., 3] RGB by `delta` turns, keeping each pixel's min and max channel
  (what tf.image.adjust_hue computes, also for values outside [0, 1])."""
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  v_max = jnp.maximum(jnp.maximum(r, g), b)
  v_min = jnp.minimum(jnp.minimum(r, g), b)
  spread = v_max - v_min
  safe = jnp.where(spread > 0, spread, 1.0)
  # Hue in sixths of a turn, [0, 6).
  hue = jnp.where(v_max == r, jnp.mod((g - b) / safe, 6.0),
                  jnp.where(v_max == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
  hue = jnp.where(spread > 0, hue, 0.0)
  hue = jnp.mod(hue + delta * 6.0, 6.0)

  def channel(n):
    k = jnp.mod(n + hue, 6.0)
    return v_max - spread * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)
  return jnp.stack([channel(5.0), channel(3.0), channel(1.0)], axis=-1)


def clip_draws(seed: jax.Array, p: AugmentParams) -> dict:
  """The random choices of one clip from its int32[2] seed: which ops apply, and their deltas."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed[0]), seed[1])
  k_apply, k_brightness, k_hue = jax.random.split(key, 3)
  u = jax.random.uniform(k_apply, (3,))
  return {
      "flip": u[0] < p.flip_prob,
      "brightness": u[1] < p.brightness_prob,
      "hue": u[2] < p.hue_prob,
      "brightness_delta": jax.random.uniform(k_brightness, (), minval=-p.brightness_max_delta,
                                             maxval=p.brightness_max_delta),
      "hue_delta": jax.random.uniform(k_hue, (), minval=-p.hue_max_delta,
                                      maxval=p.hue_max_delta),
  }


def augment_clip(video: jax.Array, seed: jax.Array, p: AugmentParams) -> jax.Array:
  """[T, H, W, 3] float clip in [0, 1] -> the augmented clip (one draw for the whole clip)."""
  d = clip_draws(seed, p)
  video = jnp.where(d["flip"], video[:, :, ::-1], video)
  video = jnp.where(d["brightness"], video + d["brightness_delta"], video)
  video = jnp.where(d["hue"], adjust_hue(video, d["hue_delta"]), video)
  return jnp.clip(video, 0.0, 1.0)


def train_video(batch: dict, p: AugmentParams | None) -> jax.Array:
  """The float32 training clips of a batch: uint8 frames scaled to [0, 1], then augmented per
  example when the batch carries ``augment_seed`` (the pipeline adds it when augmenting)."""
  video = frames_to_float(batch["video"])
  if p is None or "augment_seed" not in batch:
    return video
  return jax.vmap(augment_clip, in_axes=(0, 0, None))(video, batch["augment_seed"], p)
