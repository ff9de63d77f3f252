"""Test-wide set-up: fake CPU devices for pmap tests, quiet TF, the reference-facts fixture."""
import os
import pathlib
import tempfile

# Must happen before JAX initialises its backends: two fake CPU devices let every test exercise
# pmap and cross-replica batch norm exactly as on a 2-device accelerator host.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# One persistent XLA compilation cache for the test session: the command-line tests start
# several processes that compile the same tiny models (the SIGKILL-resume tests run three).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"avdf-test-xla-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Facts dumped from the original projects (parameter trees, key lists, alignment templates),
# copied into the repository with their provenance: tests/reference/README.md.
REFERENCE_FACTS = REPO_ROOT / "tests" / "reference"


@pytest.fixture(scope="session")
def reference_facts() -> pathlib.Path:
  return REFERENCE_FACTS


@pytest.fixture(scope="session", autouse=True)
def _no_tf_gpu():
  """TensorFlow must never grab accelerator memory that JAX needs; on CPU this is a no-op."""
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")
  yield
