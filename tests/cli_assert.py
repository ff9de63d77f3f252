"""The check behind every error test: a clear answer, no traceback, the documented exit code."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def assert_clean_exit(code: int, stderr: str, expected: int, *needles: str) -> None:
  """`code` is `expected`; stderr has no traceback, ends in an ``error:`` line (unless 0 is
  expected) and names every needle."""
  assert code == expected, f"exit {code}, expected {expected}; stderr:\n{stderr[-3000:]}"
  assert "Traceback (most recent call last)" not in stderr, stderr[-3000:]
  if expected != 0:
    assert "error:" in stderr, stderr[-3000:]
  for needle in needles:
    assert needle in stderr, f"{needle!r} not in stderr:\n{stderr[-3000:]}"


def run_cli(module: str, *args: str, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
  """``python -m module args`` from the repository root."""
  return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                        text=True, cwd=REPO_ROOT, timeout=timeout, env=env)


def assert_cli_fails(module: str, *args: str, expected: int = 2, needles=(), env=None):
  result = run_cli(module, *args, env=env)
  assert_clean_exit(result.returncode, result.stderr, expected, *needles)
  return result
