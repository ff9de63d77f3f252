"""ml_collections configs of FakeOut: the model sub-config (model.py) and, later, experiments."""
