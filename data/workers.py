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

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Callable, Optional, Sequence

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
