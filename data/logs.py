"""The project's one logging convention.

Library code logs through ``logging.getLogger(__name__)`` and never configures handlers;
every command line entry point calls :func:`setup` once. Long loops use tqdm progress bars,
which write to stderr and stay out of the log records.
"""
import logging
import os
import warnings

_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


def setup(verbose: bool = False) -> None:
  """Configures the root logger for a command and quietens chatty third-party libraries."""
  level = logging.DEBUG if verbose else logging.INFO
  logging.basicConfig(level=level, format=_FORMAT, datefmt="%H:%M:%S", force=True)
  # TensorFlow and MediaPipe (glog) print to stderr on import unless told otherwise.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("GLOG_minloglevel", "2")
  for name in ("absl", "tensorflow", "jax._src", "h5py", "matplotlib", "PIL", "numba",
               "apache_beam"):
    logging.getLogger(name).setLevel(logging.WARNING if not verbose else logging.INFO)
  warnings.filterwarnings("ignore", category=DeprecationWarning)
