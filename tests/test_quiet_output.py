"""Commands print no native (C++) log lines: MediaPipe/TFLite/absl write to fd 2 from their own
threads, so the face tracker's worker processes are run here as a user runs them."""
import os
import re
import subprocess
import sys

import pytest

from tests import video_fixtures as vf
from tests.conftest import REPO_ROOT

# What MediaPipe 0.10 / TFLite / absl print from C++ (seen in the demo's output before the fix).
NATIVE_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d|INFO: Created TensorFlow Lite|"
    r"WARNING: All log messages before absl::InitializeLog)", re.MULTILINE)


@pytest.fixture(scope="module")
def one_face_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp("quiet")
  vf.write_scene(folder / "one_face.mp4", vf.Scene((320, 240), 1.0, vf.ONE_FACE.faces), fps=29)
  return folder


def _track(folder, out, **env):
  environment = {k: v for k, v in os.environ.items() if k != "AVDF_VERBOSE"}
  environment.update(PYTHONPATH=str(REPO_ROOT), **env)
  return subprocess.run(
      [sys.executable, "-m", "data.facetrack", str(folder), "--out", str(out), "--workers", "1"],
      capture_output=True, text=True, env=environment, cwd=REPO_ROOT, timeout=600)


def test_tracking_workers_print_no_native_log_lines(one_face_folder, tmp_path):
  quiet = _track(one_face_folder, tmp_path / "quiet")
  assert quiet.returncode == 0, quiet.stderr[-2000:]
  assert not NATIVE_LOG_LINE.search(quiet.stderr), quiet.stderr[-2000:]
  # The same run with native logs asked for shows them: the pattern does catch what it guards.
  verbose = _track(one_face_folder, tmp_path / "verbose", AVDF_VERBOSE="1")
  assert verbose.returncode == 0, verbose.stderr[-2000:]
  assert NATIVE_LOG_LINE.search(verbose.stderr), verbose.stderr[-2000:]


def test_python_output_still_reaches_stderr(tmp_path):
  code = ("from data import logs; logs.setup(); import logging, os; "
          "os.write(2, b'native line\\n'); logging.getLogger('t').warning('python line')")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
  assert result.returncode == 0, result.stderr
  assert "python line" in result.stderr
  assert "native line" not in result.stderr


def test_log_lines_follow_stderr_when_it_is_replaced(monkeypatch):
  """After logs.setup(), a replaced (or closed) stderr gets the log lines, not a "--- Logging
  error ---" traceback (the full-disk test failed so in a whole test run)."""
  import io
  import logging
  from data import logs
  logs.setup()
  first = io.StringIO()
  monkeypatch.setattr(sys, "stderr", first)
  logging.getLogger("data.test").info("one")
  first.close()
  second = io.StringIO()
  monkeypatch.setattr(sys, "stderr", second)
  logging.getLogger("data.test").info("two")
  assert "two" in second.getvalue() and "Logging error" not in second.getvalue()
