"""The project's one logging convention.

Library code logs through ``logging.getLogger(__name__)`` and never configures handlers;
every command line entry point calls :func:`setup` once. Long loops use tqdm progress bars,
which write to stderr and stay out of the log records.
"""
import io
import logging
import os
import sys
import warnings

_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


# Native libraries (MediaPipe's calculator threads, TFLite, absl's C++ logging) write straight
# to file descriptor 2, past Python's logging and GLOG/TF_CPP variables, and MediaPipe does it
# from its own threads after a call has returned. AVDF_VERBOSE=1 (or --verbose) keeps them.
VERBOSE_ENV = "AVDF_VERBOSE"


def native_logs_wanted(verbose: bool = False) -> bool:
  return verbose or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def silence_native_stderr() -> None:
  """Points fd 2 at /dev/null and Python's sys.stderr at a copy of the real stderr.

  Python's writes (logging, tqdm, warnings, tracebacks) still reach the terminal; what C/C++
  code writes to fd 2 does not, in this process and in every process it starts afterwards
  (they inherit fd 2). Idempotent. Not under pytest, which owns fd 2 to capture output.
  """
  if getattr(sys.stderr, "_avdf_real_stderr", False) or "pytest" in sys.modules:
    return
  sys.stderr.flush()
  real = os.dup(2)
  with open(os.devnull, "wb") as devnull:
    os.dup2(devnull.fileno(), 2)
  stream = io.TextIOWrapper(os.fdopen(real, "wb", buffering=0), encoding="utf-8",
                            errors="backslashreplace", line_buffering=True, write_through=True)
  stream._avdf_real_stderr = True
  sys.stderr = stream


class _CurrentStderrHandler(logging.StreamHandler):
  """Writes to whatever ``sys.stderr`` is when a record is emitted, not the one at set-up: a
  stream replaced or closed since (a test's capture, a tool's redirection) would otherwise
  turn every later log line into a "--- Logging error ---" traceback."""

  def __init__(self):
    super().__init__(sys.stderr)

  @property
  def stream(self):
    return sys.stderr

  @stream.setter
  def stream(self, value):  # StreamHandler.__init__/setStream assign it; always sys.stderr
    del value


def setup(verbose: bool = False) -> None:
  """Configures the root logger for a command and quietens chatty third-party libraries."""
  if not native_logs_wanted(verbose):
    silence_native_stderr()
  level = logging.DEBUG if verbose else logging.INFO
  logging.basicConfig(level=level, format=_FORMAT, datefmt="%H:%M:%S", force=True,
                      handlers=[_CurrentStderrHandler()])
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
