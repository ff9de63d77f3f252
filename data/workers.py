"""Worker processes that end with the process that started them.

When a command is SIGKILLed (or dies of a native crash), no atexit hook or pool shutdown runs:
its pool's workers go on blocking on their task queue, or finish the video they are tracking,
each holding its models' memory, forever. Linux delivers a signal to a child when its parent
dies if asked (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls the parent's pid.

Use :func:`initializer` as a ``ProcessPoolExecutor`` initializer, around the pool's own::

  ProcessPoolExecutor(..., initializer=workers.initializer,
                      initargs=(os.getpid(), init_worker, (options, threads, verbose)))
"""
from __future__ import annotations

import collections
import ctypes
import os
import signal
import sys
import threading
import time
from concurrent import futures
from concurrent.futures import process as futures_process
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# How often the fallback thread looks for its parent (seconds).
WATCH_INTERVAL = 1.0


def _arm_parent_death_signal() -> bool:
  """SIGKILL this process when its parent dies (Linux); False where not available."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
  except (OSError, AttributeError):
    return False


def _watch(parent_pid: int) -> None:
  while True:
    time.sleep(WATCH_INTERVAL)
    if os.getppid() != parent_pid:
      os._exit(1)


def die_with_parent(parent_pid: Optional[int] = None) -> None:
  """Makes the calling (worker) process end when `parent_pid` (default: its parent) dies.

  `parent_pid` is the pid of the process that started the pool, taken there (``os.getpid()``):
  a spawned worker takes seconds to import before its initializer runs, and if the parent died
  meanwhile the worker was already re-parented and the death signal would never come. Pass
  None for pools whose workers are not the caller's children (forkserver).
  """
  if parent_pid is None:
    parent_pid = os.getppid()
  armed = _arm_parent_death_signal()
  if os.getppid() != parent_pid:
    os._exit(1)
  if not armed:
    threading.Thread(target=_watch, args=(parent_pid,), name="parent-watch",
                     daemon=True).start()


def initializer(parent_pid: Optional[int], setup: Optional[Callable] = None,
                args: Sequence = ()) -> None:
  """A pool initializer: :func:`die_with_parent`, then the pool's own `setup(*args)`."""
  die_with_parent(parent_pid)
  if setup is not None:
    setup(*args)


def map_surviving_worker_deaths(new_pool: Callable[[], futures.Executor],
                                calls: Mapping[Any, tuple], attempts: int = 3
                                ) -> Iterator[tuple[Any, Any, Optional[BaseException]]]:
  """Runs every call on a process pool that is rebuilt when one of its workers dies.

  A worker killed from outside (the OOM killer, a stray signal, a native crash) breaks a
  ``ProcessPoolExecutor``: every unfinished job then fails with ``BrokenProcessPool``, so one
  death would fail the whole set. Here the unfinished calls go to a new pool instead; a call is
  given up (its error yielded) after it was in flight at `attempts` pool deaths, so a call that
  kills its worker every time ends as a failure rather than a loop.

  Args:
    new_pool: makes a fresh pool (used as a context manager).
    calls: key -> (fn, *args); submitted in this order.
  Yields:
    (key, result, None) or (key, None, error), in completion order, once per key.
  """
  pending = dict(calls)
  tries = collections.Counter()
  while pending:
    with new_pool() as pool:
      jobs = {}
      for key, (fn, *args) in pending.items():
        try:
          jobs[pool.submit(fn, *args)] = key
        except futures_process.BrokenProcessPool:
          break  # a worker died between two submits: the rest waits for the next pool
        tries[key] += 1
      for job in futures.as_completed(jobs):
        key = jobs[job]
        try:
          result = job.result()
        except futures_process.BrokenProcessPool as error:
          if tries[key] < attempts:
            continue  # unfinished when a worker died: stays pending for the next pool
          del pending[key]
          yield key, None, error
        except Exception as error:  # noqa: BLE001 -- the caller decides what a failure means
          del pending[key]
          yield key, None, error
        else:
          del pending[key]
          yield key, result, None
