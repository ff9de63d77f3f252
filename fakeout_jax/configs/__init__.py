"""ml_collections configs of FakeOut: the model sub-config (model.py), the base experiment
(default.py) and one file per paper experiment; `load('file.py:arg')` reads one outside absl."""
from data.workdir import load_config_file as load  # noqa: F401
