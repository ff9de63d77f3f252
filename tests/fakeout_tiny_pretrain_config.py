"""The tests' tiny pre-training run as a config file (for the command-line SIGKILL test)."""
from tests import fakeout_tiny


def get_config():
  return fakeout_tiny.pretrain_config(root="")
