"""ml_collections configs of the inconsistency detector; ``model.py`` is the model sub-config."""
