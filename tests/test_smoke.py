"""The environment itself: packages import, pmap works on fake devices, TF and JAX coexist."""
import importlib
import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.parametrize("package", ["data", "fakeout_jax", "inconsistency_jax"])
def test_package_imports(package):
  importlib.import_module(package)


@pytest.mark.parametrize("module", [
    "jax", "flax.linen", "optax", "orbax.checkpoint", "haiku", "tensorflow",
    "tensorflow_datasets", "mediapipe", "mtcnn", "librosa", "sklearn", "skimage", "av",
    "imageio_ffmpeg", "ml_collections", "apache_beam", "cv2", "safetensors"])
def test_dependency_imports(module):
  importlib.import_module(module)


def test_pmap_pmean_over_two_fake_devices():
  import jax
  from jax import lax
  assert jax.local_device_count() == 2, jax.devices()
  x = np.array([1.0, 3.0], np.float32)
  out = jax.pmap(lambda v: lax.pmean(v, axis_name="batch"), axis_name="batch")(x)
  np.testing.assert_allclose(np.asarray(out), [2.0, 2.0])


def test_tensorflow_and_jax_in_one_process():
  import jax.numpy as jnp
  import tensorflow as tf
  ds = tf.data.Dataset.range(4).map(lambda i: tf.cast(i, tf.float32) * 2.0).batch(4)
  batch = next(iter(ds.as_numpy_iterator()))
  assert float(jnp.sum(jnp.asarray(batch))) == 12.0


def test_mediapipe_legacy_facemesh_is_available():
  import mediapipe as mp
  assert hasattr(mp.solutions, "face_mesh"), "mediapipe without the legacy FaceMesh solution"


def test_exactly_one_opencv_distribution():
  out = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"],
                       capture_output=True, text=True, check=True).stdout
  dists = sorted(line.split("==")[0].lower() for line in out.splitlines()
                 if line.lower().startswith("opencv"))
  assert dists == ["opencv-contrib-python"], dists
