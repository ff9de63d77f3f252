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


def progress(iterable=None, **kwargs):
  """A tqdm progress bar on stderr: live on a terminal, one line every 30 s in a log file.

  Only process 0 of a multi-host JAX run shows it (when JAX is already imported).
  """
  import sys
  from tqdm import tqdm
  interactive = sys.stderr.isatty()
  kwargs.setdefault("file", sys.stderr)
  kwargs.setdefault("mininterval", 0.5 if interactive else 30.0)
  kwargs.setdefault("dynamic_ncols", interactive)
  if "jax" in sys.modules and "disable" not in kwargs:
    kwargs["disable"] = sys.modules["jax"].process_index() != 0
  return tqdm(iterable, **kwargs)
