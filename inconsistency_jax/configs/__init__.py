"""ml_collections configs of the inconsistency detector; ``model.py`` is the model sub-config.

`load('file.py:arg')` reads one outside absl (notebooks, library callers)."""
from data.workdir import load_config_file as load  # noqa: F401
