"""Issue 19: a SIGKILLed command's worker processes end with it instead of running on."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from data import workers
from tests import video_fixtures as vf
from tests.conftest import REPO_ROOT


def _gone(pids, seconds):
  """The pids of `pids` still running (zombies count as gone) after waiting up to `seconds`."""
  deadline = time.monotonic() + seconds
  alive = set(pids)
  while alive and time.monotonic() < deadline:
    alive = {p for p in alive if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
    time.sleep(0.1)
  return alive


def _kill_all(pids):
  for pid in pids:
    try:
      os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
      pass


def test_tracking_workers_die_with_a_sigkilled_parent(tmp_path):
  source = tmp_path / "in"
  source.mkdir()
  scene = vf.Scene((320, 240), 2.0, vf.ONE_FACE.faces)
  first = vf.write_scene(source / "v0.mp4", scene, fps=30)
  for n in range(1, 6):  # more videos than workers: the run is busy when it is killed
    (source / f"v{n}.mp4").write_bytes(first.read_bytes())
  out = tmp_path / "out"
  process = subprocess.Popen(
      [sys.executable, "-m", "data.facetrack", str(source), "--out", str(out), "--workers", "2"],
      cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  parent = psutil.Process(process.pid)
  children = set()
  try:
    # Wait until both workers are tracking (their initializer has run): each writes into its
    # own .partial/<name>.<pid> folder.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
      assert process.poll() is None, "the run ended before it could be killed"
      children |= {c.pid for c in parent.children() if c.name().startswith("python")}
      busy = {p.suffix[1:] for p in (out / ".partial").rglob("*.*") if p.is_dir()}
      if len(busy & {str(c) for c in children}) >= 2:
        break
      time.sleep(0.05)
    else:
      pytest.fail("the workers did not start tracking within 180 s")
    children |= {c.pid for c in parent.children()}
    process.send_signal(signal.SIGKILL)
    process.wait()
    alive = _gone(children, 10)
  finally:
    process.kill()
    process.wait()
  _kill_all(alive)
  assert not alive, f"worker processes {sorted(alive)} outlived their SIGKILLed parent"


def test_a_worker_whose_parent_is_already_gone_ends_at_once():
  """The race: the parent dies while a spawned worker is still importing; the worker's
  initializer finds itself re-parented and exits instead of waiting for a signal that passed."""
  code = ("import os; from data import workers; workers.initializer(os.getppid() + 1_000_000);"
          " print('survived')")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 1 and "survived" not in result.stdout


def test_the_initializer_runs_the_pools_own_setup(monkeypatch):
  calls = []
  monkeypatch.setattr(workers, "_arm_parent_death_signal", lambda: True)
  workers.initializer(os.getppid(), lambda *args: calls.append(args), (1, "two"))
  assert calls == [(1, "two")]


def _square_or_die(x, marker_dir):
  """x squared; a worker dies (SIGKILL of itself) the first time it meets x == 3, every time
  when marker_dir is None."""
  if x == 3:
    marker = None if marker_dir is None else os.path.join(marker_dir, "died-once")
    if marker is None or not os.path.exists(marker):
      if marker is not None:
        open(marker, "w").close()
      os.kill(os.getpid(), signal.SIGKILL)
  return x * x


def _spawn_pool():
  import multiprocessing
  from concurrent import futures
  return futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def test_a_killed_worker_costs_a_new_pool_not_the_other_jobs(tmp_path):
  calls = {x: (_square_or_die, x, str(tmp_path)) for x in range(6)}
  results = {k: (r, e) for k, r, e in workers.map_surviving_worker_deaths(_spawn_pool, calls)}
  assert results == {x: (x * x, None) for x in range(6)}
  # without the rebuild (one plain pool) the death fails the jobs still unfinished
  (tmp_path / "died-once").unlink()
  with _spawn_pool() as pool:
    jobs = [pool.submit(_square_or_die, x, str(tmp_path)) for x in range(6)]
  assert sum(isinstance(j.exception(), Exception) for j in jobs) >= 2


def test_a_job_that_always_kills_its_worker_fails_after_its_attempts():
  calls = {3: (_square_or_die, 3, None)}
  [(key, result, error)] = list(workers.map_surviving_worker_deaths(_spawn_pool, calls,
                                                                    attempts=2))
  assert key == 3 and result is None and "terminated abruptly" in str(error)
