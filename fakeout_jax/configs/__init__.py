"""ml_collections configs of FakeOut: the model sub-config (model.py), the base experiment
(default.py) and one file per paper experiment; `load('file.py:arg')` reads one outside absl."""
import importlib.util
import pathlib


def load(spec: str):
  """`path/to/config.py` or `path/to/config.py:arg` -> the file's get_config([arg])."""
  path, _, arg = spec.partition(":")
  if not pathlib.Path(path).is_file():
    raise FileNotFoundError(f"config file {path} not found")
  module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()
