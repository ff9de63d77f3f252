"""One verdict per video: both detectors on the same face tracks, fused and calibrated.

The product layer above the two sibling detectors (fakeout_jax, inconsistency_jax): it imports
both, neither imports it. ``python -m avdf.detect`` is its command (detect, calibrate, evaluate).
"""
