"""FakeOut's on-device training augmentation (fakeout_jax.augment) against the tf.data version it
replaced (input_pipeline.augment_on='host'): the same ops, the same per-op distributions, uint8
frames scaled exactly as before, evaluation inputs unchanged to the bit, resumable draws."""
import colorsys
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from fakeout_jax import augment
from fakeout_jax import input_pipeline as ip
from tests.test_fakeout_input_pipeline import _small_config, _write_shards

NUM_CLIPS = 3000
GREY = 0.5
COLOUR = np.array([0.7, 0.35, 0.3], np.float32)   # hue 0.0238 turns, far from the clip bounds


def _probe_clip():
  """[2, 2, 3, 3] clip: a grey column (brightness), a coloured column (hue), a black one (flip).
  Values stay inside [0, 1] under every draw (brightness +-0.125), so clipping hides nothing."""
  clip = np.zeros((2, 2, 3, 3), np.float32)
  clip[:, :, 0] = GREY
  clip[:, :, 1] = COLOUR
  return clip


def _hue(rgb):
  return np.array([colorsys.rgb_to_hsv(*p)[0] for p in rgb.reshape(-1, 3)])


def _measure(out):
  """Per clip: flipped?, brightness delta, hue delta (turns), read off the probe's pixels."""
  out = np.asarray(out)
  flipped = out[:, 0, 0, 0, 0] < out[:, 0, 0, 2, 0]  # the (brighter) grey column moved right
  grey_side = np.where(flipped, 2, 0)
  rows = np.arange(len(out))
  brightness = out[rows, 0, 0, grey_side, 0] - GREY
  coloured = out[:, 0, 0, 1]
  base_hue = _hue(np.clip(COLOUR[None] + brightness[:, None], 0, 1))
  hue = (_hue(coloured) - base_hue + 0.5) % 1.0 - 0.5
  return flipped, brightness, hue


@functools.lru_cache()
def _tf_draws(n):
  c = ip.get_config()
  clip = tf.constant(_probe_clip())
  ds = tf.data.Dataset.range(n).map(
      lambda i: ip._augment(clip, tf.random.experimental.stateless_fold_in(
          tf.stack([tf.constant(12345, tf.int64), i]), 1), c))
  return np.stack(list(ds.batch(500).as_numpy_iterator())).reshape(n, 2, 2, 3, 3)


def _device_draws(n):
  p = augment.AugmentParams.from_config(ip.get_config())
  seeds = jnp.stack([jnp.full(n, 987, jnp.int32), jnp.arange(n, dtype=jnp.int32)], -1)
  clips = jnp.broadcast_to(jnp.asarray(_probe_clip()), (n, 2, 2, 3, 3))
  return jax.jit(jax.vmap(augment.augment_clip, in_axes=(0, 0, None)),
                 static_argnums=2)(clips, seeds, p)


def test_hue_rotation_matches_tf_adjust_hue():
  rng = np.random.default_rng(0)
  rgb = rng.uniform(-0.1, 1.15, (4000, 3)).astype(np.float32)  # incl. after a brightness shift
  rgb[:10] = rgb[:10, :1]                                        # greys (no hue)
  for delta in (-0.2, -0.07, 0.0, 0.13, 0.2):
    expected = tf.image.adjust_hue(rgb[None], delta).numpy()[0]
    np.testing.assert_allclose(np.asarray(augment.adjust_hue(jnp.asarray(rgb), delta)),
                               expected, atol=2e-6)
  # Sensitive: a hue rotation off by 1 % of its delta is told apart.
  wrong = np.asarray(augment.adjust_hue(jnp.asarray(rgb), 0.13 * 1.01))
  assert np.abs(wrong - tf.image.adjust_hue(rgb[None], 0.13).numpy()[0]).max() > 1e-3


def test_device_augmentation_draws_the_same_distributions_as_the_tf_data_version():
  """Over 3000 clips each: the rate of every op within 4.5 binomial standard deviations of the
  other version's rate, and the deltas' distributions the same by a two-sample KS test
  (p > 1e-3); the deltas span their configured ranges."""
  tf_flip, tf_bright, tf_hue = _measure(_tf_draws(NUM_CLIPS))
  dev_flip, dev_bright, dev_hue = _measure(_device_draws(NUM_CLIPS))
  # No op moves a value by 1e-6 unless it was applied.
  tf_ops = [tf_flip, np.abs(tf_bright) > 1e-6, np.abs(tf_hue) > 1e-5]
  dev_ops = [dev_flip, np.abs(dev_bright) > 1e-6, np.abs(dev_hue) > 1e-5]
  sd = np.sqrt(2 * 0.25 / NUM_CLIPS)
  for name, a, b in zip(("flip", "brightness", "hue"), tf_ops, dev_ops):
    assert abs(a.mean() - 0.5) < 4.5 * sd * 0.71 and abs(b.mean() - 0.5) < 4.5 * sd * 0.71, name
    assert abs(a.mean() - b.mean()) < 4.5 * sd, name
  for name, a, b, limit in (("brightness", tf_bright[tf_ops[1]], dev_bright[dev_ops[1]], 32 / 255),
                            ("hue", tf_hue[tf_ops[2]], dev_hue[dev_ops[2]], 0.2)):
    assert stats.ks_2samp(a, b).pvalue > 1e-3, name
    for x in (a, b):
      assert np.abs(x).max() <= limit + 1e-5 and np.abs(x).max() > 0.97 * limit, name
      assert stats.kstest(x / limit, "uniform", args=(-1, 2)).pvalue > 1e-3, name
  # The ops are drawn independently (one draw each per clip), in both versions.
  for ops in (tf_ops, dev_ops):
    both = np.mean(ops[0] & ops[2])
    assert abs(both - 0.25) < 4.5 * np.sqrt(0.25 * 0.75 / NUM_CLIPS)


def test_the_statistics_tell_a_wrong_range_apart():
  """Sensitivity of the KS check above: a hue range of 0.25 instead of 0.2 fails it."""
  wide = augment.AugmentParams(hue_max_delta=0.25)
  seeds = jnp.stack([jnp.zeros(NUM_CLIPS, jnp.int32), jnp.arange(NUM_CLIPS, dtype=jnp.int32)], -1)
  clips = jnp.broadcast_to(jnp.asarray(_probe_clip()), (NUM_CLIPS, 2, 2, 3, 3))
  out = jax.vmap(augment.augment_clip, in_axes=(0, 0, None))(clips, seeds, wide)
  _, _, hue = _measure(out)
  _, _, tf_hue = _measure(_tf_draws(NUM_CLIPS))
  assert stats.ks_2samp(tf_hue[np.abs(tf_hue) > 1e-5], hue[np.abs(hue) > 1e-5]).pvalue < 1e-3


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
  return _write_shards(tmp_path_factory.mktemp("aug"), [0] * 3 + [1] * 5)


def test_uint8_batches_scale_to_the_former_float_frames_exactly(shards):
  c = _small_config(image_size=224, augment=False, use_audio=False)
  device = next(ip.train_dataset(shards, c, batch_size=4, seed=0, epoch=0).as_numpy_iterator())
  c.augment_on = "host"
  host = next(ip.train_dataset(shards, c, batch_size=4, seed=0, epoch=0).as_numpy_iterator())
  assert device["video"].dtype == np.uint8 and host["video"].dtype == np.float32
  assert "augment_seed" not in device
  assert device["video"].nbytes * 4 == host["video"].nbytes
  np.testing.assert_array_equal(np.asarray(augment.frames_to_float(jnp.asarray(device["video"]))),
                                host["video"])


def test_augmented_batches_carry_resumable_per_example_seeds(shards):
  c = _small_config(use_audio=False)
  make = lambda start=0, epoch=0: list(ip.train_dataset(
      shards, c, batch_size=2, seed=0, epoch=epoch, start_index=start).as_numpy_iterator())
  full, resumed, other_epoch = make(), make(start=2), make(epoch=1)
  assert full[0]["augment_seed"].shape == (2, 2) and full[0]["augment_seed"].dtype == np.int32
  for a, b in zip(full[1:], resumed):
    np.testing.assert_array_equal(a["augment_seed"], b["augment_seed"])
  seeds = np.concatenate([b["augment_seed"] for b in full])
  assert len({tuple(s) for s in seeds}) == len(seeds)
  assert not np.array_equal(seeds, np.concatenate([b["augment_seed"] for b in other_epoch]))
  # The train step's augmentation is a function of the seed alone.
  p = augment.AugmentParams.from_config(c)
  batch = {"video": jnp.asarray(full[1]["video"]), "augment_seed": jnp.asarray(seeds[2:4])}
  again = {"video": jnp.asarray(resumed[0]["video"]),
           "augment_seed": jnp.asarray(resumed[0]["augment_seed"])}
  np.testing.assert_array_equal(np.asarray(augment.train_video(batch, p)),
                                np.asarray(augment.train_video(again, p)))


def test_evaluation_inputs_are_unchanged_to_the_bit(shards):
  """Evaluation batches stay float32 (whatever augment_on says), equal to the records' frames
  times float32(1/255) exactly, and the model sees them as they are."""
  c = _small_config(image_size=224, use_audio=False)
  device = next(ip.eval_dataset(shards, c, batch_size=2).as_numpy_iterator())
  c.augment_on = "host"
  host = next(ip.eval_dataset(shards, c, batch_size=2).as_numpy_iterator())
  np.testing.assert_array_equal(device["video"], host["video"])
  assert device["video"].dtype == np.float32
  # _write_shards paints frame f of track i with (5 f + i) % 250 (a flat JPEG decodes exactly).
  starts = np.linspace(0, 40 - c.num_frames * c.frame_stride, c.eval_num_clips).astype(int)
  frames = starts[:, None] + c.frame_stride * np.arange(c.num_frames)
  for row, track in enumerate(device["video_id"]):
    i = int(track.decode()[1:])
    expected = ((5 * frames + i) % 250).astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(device["video"][row, :, :, 100, 100, 0], expected)
  video = jnp.asarray(device["video"])
  assert augment.frames_to_float(video) is video
