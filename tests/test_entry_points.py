"""Every console script of setup.cfg points at a callable, and each command answers --help."""
import configparser
import importlib
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def _scripts():
  parser = configparser.ConfigParser()
  parser.read(REPO_ROOT / "setup.cfg")
  lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
  return [tuple(part.strip() for part in line.split("=")) for line in lines]


@pytest.mark.parametrize("name,target", _scripts())
def test_console_script_targets_exist(name, target):
  module, function = target.split(":")
  assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize("module,flag", [("fakeout_jax.finetune", "--workdir"),
                                         ("inconsistency_jax.train", "--workdir"),
                                         ("data.prepare", "--out"),
                                         ("fakeout_jax.predict", "--checkpoint")])
def test_help_lists_the_flags(module, flag):
  result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
  assert flag in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_console_script_help_lists_the_flags():
  """A console script's --help names the module's flags (absl keys them by sys.argv[0])."""
  script = pathlib.Path(sys.executable).parent / "fakeout-evaluate"
  if not script.exists():
    pytest.skip("package not installed with its console scripts (pip install -e .)")
  result = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
  assert "--checkpoint" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
