"""Unsupervised intra-/cross-modal inconsistency detection (Tian et al.) in JAX/Flax."""
