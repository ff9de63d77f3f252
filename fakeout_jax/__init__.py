"""FakeOut (Knafo & Fried) in JAX/Flax: the MMV audio-visual backbone fine-tuned to detect fakes."""
