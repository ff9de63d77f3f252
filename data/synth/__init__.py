"""A synthetic audio-visual deepfake set made from real face photos, with full ground truth.

`python -m data.synth --out DIR` writes real talking-head videos and fakes of them in the exact
on-disk layout and metadata format of FakeAVCeleb v1.2 or FaceForensics++, so the real dataset
adapters read it unchanged, plus a ground-truth sidecar they ignore.

Modules, in the order data flows:
  photos         the shipped face photos and their MediaPipe FaceMesh landmarks
  identities     identities widened from them by landmark morphing and colour changes
  voice          procedural speech: utterance timelines, source-filter voices, rooms
  rig, warp      jaw and eyelid motion by piecewise-affine landmark warps
  plan           what each real video is made of (resolution, fps, length, people, motion)
  fakes          fakes derived from a real plan, and their ground truth
  manipulations  the per-frame face swaps, identity drift and re-rendering
  render         frames and sound of a plan, encoded as H.264/AAC mp4
  layouts        FakeAVCeleb / FaceForensics++ trees, metadata and the sidecar
  pipeline       validation, planning and parallel rendering
"""
from data.synth.pipeline import Config, SynthError, Summary, generate, validate

__all__ = ["Config", "SynthError", "Summary", "generate", "validate"]
