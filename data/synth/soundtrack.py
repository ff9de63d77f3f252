"""The soundtrack of a plan, and its loudness per video frame."""
from __future__ import annotations

import numpy as np

from data import constants
from data.synth import plan as plan_lib
from data.synth import voice as voice_lib


def render_audio(plan: plan_lib.VideoPlan) -> np.ndarray:
  """float32 mono audio: every speech track synthesised and recorded in the plan's room."""
  rate = constants.SAMPLE_RATE
  speeches = [voice_lib.synthesize(track.utterance, track.voice, rate, track.seed)
              for track in plan.speech]
  audio = voice_lib.record(speeches, plan.room, rate, plan.audio_seed)
  num = int(round(plan.num_frames / float(plan.fps) * rate))
  return np.pad(audio, (0, max(0, num - len(audio))))[:num]


def frame_rms(audio: np.ndarray, fps: float, num_frames: int,
              sample_rate: int = constants.SAMPLE_RATE) -> np.ndarray:
  """Root-mean-square level of the samples inside each video frame's interval."""
  edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(int)
  edges = np.clip(edges, 0, len(audio))
  energy = np.concatenate([[0.0], np.cumsum(np.asarray(audio, np.float64) ** 2)])
  counts = np.maximum(edges[1:] - edges[:-1], 1)
  return np.sqrt((energy[edges[1:]] - energy[edges[:-1]]) / counts).astype(np.float32)
