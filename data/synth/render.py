"""Renders a `VideoPlan` to an H.264/AAC mp4: talking heads over a background, with sound.

Per frame: each person's canvas (mouth, blinks, manipulations: `manipulations.py`) is lit by a
slowly turning light gradient, moved by its head motion (roll, shift, zoom) and the camera
shake, and composited with its matte over a blurred, tinted real photo; a slow exposure and
white-balance drift applies to the whole frame. The audio is the plan's speech tracks spoken
in the plan's room. Frames are streamed to `data.video_writer.VideoWriter` one at a time.
"""
from __future__ import annotations

import pathlib

import cv2
import numpy as np

from data import constants
from data import video_writer
from data.synth import identities
from data.synth import manipulations
from data.synth import photos
from data.synth import plan as plan_lib
from data.synth import soundtrack
from data.synth import voice as voice_lib

CRF = 23  # FaceForensics++ "c23"; the same for every video, real or fake
_SHAKE_MARGIN = 0.03  # background overscan (fraction of each side) for camera shake


def render_video(plan: plan_lib.VideoPlan, bank: identities.IdentityBank,
                 path: str | pathlib.Path) -> float:
  """Writes `plan` to `path` (mp4).

  Returns:
    Pearson r between the mouth opening rendered for person 0 and the frame-wise RMS of the
    audio written: the designed lip sync of the video (the ground truth's `design_sync_r`).
  """
  fps = float(plan.fps)
  people = [manipulations.PersonRenderer(person, bank, fps, plan.num_frames)
            for person in plan.people]
  scene = _Scene(plan)
  audio = soundtrack.render_audio(plan)
  with video_writer.VideoWriter(path, fps=fps, size=(plan.width, plan.height),
                                sample_rate=constants.SAMPLE_RATE, crf=CRF) as writer:
    for index in range(plan.num_frames):
      time = (index + 0.5) / fps
      frame, shake = scene.background_at(time)
      for slot, (person, renderer) in enumerate(zip(plan.people, people)):
        canvas = scene.light_face(renderer.frame(index), time, slot)
        matrix = _head_transform(person, plan.height, time, shake)
        _composite(frame, canvas, renderer.alpha, matrix)
      writer.write_frame(scene.expose(frame, time))
    writer.write_audio(audio)
  loudness = soundtrack.frame_rms(audio, fps, plan.num_frames)
  return voice_lib.correlation(people[0].mouth, loudness)


def _head_transform(person: plan_lib.PersonPlan, frame_height: int, time: float,
                    shake: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(2x2 rotation-scale, face centre as frame fractions, offset in pixels) at `time`."""
  roll, shift_x, shift_y, zoom = person.motion.at(time)
  face_px = person.face_height * frame_height
  scale = face_px / identities.CANVAS_FACE_HEIGHT * zoom
  angle = np.deg2rad(roll)
  linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  offset = np.array([shift_x * face_px, shift_y * face_px]) + shake
  return linear, np.array(person.center, np.float64), offset


def _composite(frame: np.ndarray, canvas: np.ndarray, alpha: np.ndarray, transform) -> None:
  """Alpha-blends the warped canvas into `frame` in place (only inside its bounding box)."""
  linear, center, offset = transform
  height, width = frame.shape[:2]
  face_center = np.array(identities.CANVAS_FACE_CENTER)
  target = np.array([center[0] * width, center[1] * height]) + offset
  matrix = np.concatenate([linear, np.zeros((2, 1))], axis=1)
  scale = float(np.sqrt(abs(np.linalg.det(linear))))
  # Shrink first when strongly minified: warpAffine's bilinear filter would alias.
  while scale < 0.6:
    canvas, alpha = cv2.pyrDown(canvas), cv2.pyrDown(alpha)
    matrix[:, :2] *= 2
    face_center = face_center / 2
    scale *= 2
  matrix[:, 2] = target - matrix[:, :2] @ face_center
  corners = np.array([[0, 0], [canvas.shape[1], 0], [0, canvas.shape[0]],
                      [canvas.shape[1], canvas.shape[0]]], np.float64)
  mapped = corners @ matrix[:, :2].T + matrix[:, 2]
  x0, y0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int), 0)
  x1, y1 = np.minimum(np.ceil(mapped.max(axis=0)).astype(int) + 1, [width, height])
  if x1 <= x0 or y1 <= y0:
    return
  matrix[:, 2] -= [x0, y0]
  size = (int(x1 - x0), int(y1 - y0))
  warped = cv2.warpAffine(canvas, matrix, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
  weight = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32)
  weight *= 1 / 255
  region = frame[y0:y1, x0:x1]
  region[...] = cv2.blendLinear(warped, region, weight, 1.0 - weight)


class _Scene:
  """Background, camera shake, face lighting and exposure drift of one recording."""

  def __init__(self, plan: plan_lib.VideoPlan):
    scene = plan.scene
    self.width, self.height = plan.width, plan.height
    rng = np.random.default_rng(scene.seed)
    self.margin = int(np.ceil(_SHAKE_MARGIN * max(plan.width, plan.height)))
    self.background = _background(scene, plan.width + 2 * self.margin,
                                  plan.height + 2 * self.margin)
    self.shake = scene.shake * plan.height
    self.shake_waves = rng.uniform(0.3, 2.0, (2, 3)), rng.uniform(0, 2 * np.pi, (2, 3))
    self.gradient = scene.light_gradient
    self.light_turn = rng.uniform(0.03, 0.15) * rng.choice([-1, 1]), rng.uniform(0, 2 * np.pi)
    self.brightness_waves = rng.uniform(0.05, 0.3, 2), rng.uniform(0, 2 * np.pi, 2)
    self.exposure = scene.exposure_drift
    self.exposure_waves = rng.uniform(0.03, 0.2, 3), rng.uniform(0, 2 * np.pi, 3)
    ys, xs = np.mgrid[0:identities.CANVAS_HEIGHT, 0:identities.CANVAS_WIDTH].astype(np.float32)
    cx, cy = identities.CANVAS_FACE_CENTER
    self._x = (xs - cx) / identities.CANVAS_FACE_HEIGHT
    self._y = (ys - cy) / identities.CANVAS_FACE_HEIGHT

  def background_at(self, time: float) -> tuple[np.ndarray, np.ndarray]:
    """A copy of the background seen through the shaken camera, and the shake in pixels."""
    frequencies, phases = self.shake_waves
    shake = self.shake * np.sin(2 * np.pi * frequencies * time + phases).mean(axis=1)
    dx, dy = np.clip(np.round(shake).astype(int), -self.margin, self.margin)
    x0, y0 = self.margin + dx, self.margin + dy
    return self.background[y0:y0 + self.height, x0:x0 + self.width].copy(), shake

  def light_face(self, canvas: np.ndarray, time: float, slot: int) -> np.ndarray:
    """A light gradient across the face whose direction turns slowly, and a brightness drift."""
    speed, phase = self.light_turn
    angle = 2 * np.pi * speed * time + phase + slot
    frequencies, phases = self.brightness_waves
    level = 1.0 + 0.04 * float(np.sin(2 * np.pi * frequencies * time + phases).mean())
    gain = level + self.gradient * (np.cos(angle) * self._x + np.sin(angle) * self._y)
    return cv2.multiply(canvas, cv2.merge([gain, gain, gain]), dtype=cv2.CV_8U)

  def expose(self, frame: np.ndarray, time: float) -> np.ndarray:
    """Slow exposure and white-balance drift of the camera (a per-channel curve)."""
    frequencies, phases = self.exposure_waves
    gains = 1.0 + self.exposure * np.sin(2 * np.pi * frequencies * time + phases)
    return cv2.multiply(frame, (float(gains[0]), float(gains[1]), float(gains[2]), 0.0))


def _background(scene: plan_lib.Scene, width: int, height: int) -> np.ndarray:
  """A crop of a real photo, resized to the frame, blurred (depth of field) and tinted."""
  rng = np.random.default_rng(scene.background_seed)
  image = photos.load_background(scene.background)
  if rng.random() < 0.5:
    image = image[:, ::-1]
  source_h, source_w = image.shape[:2]
  aspect = width / height
  crop_h = int(min(source_h, source_w / aspect) * rng.uniform(0.6, 1.0))
  crop_w = int(crop_h * aspect)
  top = int(rng.integers(0, source_h - crop_h + 1))
  left = int(rng.integers(0, source_w - crop_w + 1))
  crop = np.ascontiguousarray(image[top:top + crop_h, left:left + crop_w])
  out = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if crop_w > width
                   else cv2.INTER_CUBIC)
  out = cv2.GaussianBlur(out, (0, 0), max(0.5, scene.blur * height))
  lab = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
  lab += np.array(scene.tint, np.float32) * np.array([255 / 100, 1, 1], np.float32)
  return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
