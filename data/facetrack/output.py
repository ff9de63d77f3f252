"""The streaming disk form of a track: ``name.mp4`` (224x224 faces + audio) and ``name.npz``.

Both are written frame by frame while the render pass runs, so memory does not depend on the
video's length: the landmarks go straight into the .npz (a zip of .npy members, written as a
stream), the few small per-frame arrays (transforms, masks, times) are preallocated, and the
audio is decoded in chunks and muxed along with the frames. Files are written under a hidden
``.partial`` folder and moved into place only once every track of the video is complete, so
an interrupted run never leaves a file that looks finished.

The sidecar holds what :data:`data.tracks.SIDECAR_ARRAYS` lists plus ``meta_json``; read it
with :func:`data.tracks.load_sidecar`.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import zipfile
from typing import Iterator, Optional

import numpy as np

from data import constants
from data import video
from data import video_writer
from data.facetrack import landmarks as landmarks_lib
from data.facetrack import pipeline

PARTIAL_DIR = ".partial"


class AudioCursor:
  """Hands out consecutive audio samples from a chunk iterator, zero-padded past its end."""

  def __init__(self, chunks: Iterator[np.ndarray]):
    self._chunks = chunks
    self._buffer = np.zeros(0, np.float32)

  def take(self, count: int) -> np.ndarray:
    pieces, size = [self._buffer], len(self._buffer)
    while size < count and self._chunks is not None:
      chunk = next(self._chunks, None)
      if chunk is None:
        self._chunks = None
        break
      pieces.append(chunk)
      size += len(chunk)
    data = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    if len(data) < count:
      data = np.concatenate([data, np.zeros(count - len(data), np.float32)])
    self._buffer = data[count:]
    return data[:count]


class TrackFileWriter:
  """A render-pass sink writing one track's mp4 and sidecar."""

  def __init__(self, mp4_path, sidecar_path, num_frames: int, audio: Optional[Iterator],
               meta: dict):
    self.mp4_path, self.sidecar_path = pathlib.Path(mp4_path), pathlib.Path(sidecar_path)
    self._meta = dict(meta, num_frames=num_frames, has_audio=audio is not None,
                      sample_rate=constants.SAMPLE_RATE)
    self._count = num_frames
    self._video = video_writer.VideoWriter(
        self.mp4_path, constants.FPS, (constants.FACE_SIZE, constants.FACE_SIZE),
        sample_rate=constants.SAMPLE_RATE if audio is not None else None)
    self._audio = AudioCursor(audio) if audio is not None else None
    self._audio_written = 0
    self._zip = zipfile.ZipFile(self.sidecar_path, "w", zipfile.ZIP_STORED, allowZip64=True)
    self._landmarks = self._zip.open("landmarks_224.npy", "w", force_zip64=True)
    np.lib.format.write_array_header_1_0(self._landmarks, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
        "shape": (num_frames, landmarks_lib.NUM_LANDMARKS, 3)})
    self._arrays = {"timestamps": np.zeros(num_frames, np.float64),
                    "transforms_224": np.zeros((num_frames, 2, 3), np.float32),
                    "transforms_112": np.zeros((num_frames, 2, 3), np.float32),
                    "detected": np.zeros(num_frames, bool)}
    self._written = 0

  def add(self, frame: pipeline.RenderedFrame) -> None:
    if frame.index != self._written:
      raise ValueError(f"{self.mp4_path}: frame {frame.index} arrived, expected {self._written}")
    self._video.write_frame(frame.face_224)
    if self._audio is not None:
      end = pipeline.audio_samples(frame.index + 1)
      self._video.write_audio(self._audio.take(end - self._audio_written))
      self._audio_written = end
    self._landmarks.write(np.ascontiguousarray(frame.landmarks_224, np.float32).tobytes())
    self._arrays["timestamps"][frame.index] = frame.time
    self._arrays["transforms_224"][frame.index] = frame.transform_224
    self._arrays["transforms_112"][frame.index] = frame.transform_112
    self._arrays["detected"][frame.index] = frame.detected
    self._written += 1

  def close(self) -> dict:
    """Finishes both files; returns the track's summary for the manifest."""
    if self._written != self._count:
      raise RuntimeError(f"{self.mp4_path}: {self._written} of {self._count} frames written")
    self._video.close()
    self._landmarks.close()
    for name, array in self._arrays.items():
      with self._zip.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)
    detected = self._arrays["detected"]
    self._meta["detected_fraction"] = float(detected.mean()) if len(detected) else 0.0
    with self._zip.open("meta_json.npy", "w") as member:
      np.lib.format.write_array(member, np.array(json.dumps(self._meta)), allow_pickle=False)
    self._zip.close()
    return {"name": self._meta["name"], "frames": self._count,
            "detected_fraction": round(self._meta["detected_fraction"], 4)}

  def abort(self) -> None:
    for closer in (self._video.close, self._landmarks.close, self._zip.close):
      try:
        closer()
      except Exception:  # noqa: BLE001 - best effort clean-up of files about to be deleted
        pass


def output_paths(out_dir: pathlib.Path, name: str) -> tuple:
  return out_dir / f"{name}.mp4", out_dir / f"{name}.npz"


def existing_outputs(out_dir: pathlib.Path, video_id: str) -> list:
  """Complete outputs already on disk for an input: `id.mp4` or `id@partN.mp4`, with sidecars."""
  base = out_dir / video_id
  candidates = [base.parent / f"{base.name}.mp4"] + sorted(base.parent.glob(
      f"{_glob_escape(base.name)}@part*.mp4"))
  return [p for p in candidates if p.is_file() and p.with_suffix(".npz").is_file()]


def _glob_escape(text: str) -> str:
  import glob
  return glob.escape(text)


def track_to_files(tracker: pipeline.FaceTracker, path, video_id: str, out_dir) -> dict:
  """Tracks one video and writes its tracks under `out_dir`; returns manifest fields.

  Raises VideoError subclasses like FaceTracker.track; nothing is left on disk then.
  """
  out_dir = pathlib.Path(out_dir)
  partial = out_dir / PARTIAL_DIR / f"{video_id}.{os.getpid()}"
  shutil.rmtree(partial, ignore_errors=True)
  partial.mkdir(parents=True)
  store = landmarks_lib.LandmarkStore(str(partial))
  writers = []
  try:
    analysis = tracker.analyse(path, store)
    info = analysis.info
    for track in analysis.tracks:
      name = pipeline.track_name(video_id, track.multi, track.part)
      leaf = pathlib.PurePosixPath(name).name
      audio = (video.iter_audio(path, end=analysis.num_frames / constants.FPS)
               if info.has_audio else None)
      meta = {"video_id": video_id, "video_path": str(path), "track_index": track.part,
              "name": name, "fps": float(constants.FPS),
              "source_size": [info.width, info.height], "source_fps": info.source_fps}
      writers.append(TrackFileWriter(partial / f"{leaf}.mp4", partial / f"{leaf}.npz",
                                     analysis.num_frames, audio, meta))
    tracker.render(path, analysis, writers)
    summaries = [writer.close() for writer in writers]
    writers = []
    final_dir = (out_dir / video_id).parent
    final_dir.mkdir(parents=True, exist_ok=True)
    for summary in summaries:
      leaf = pathlib.PurePosixPath(summary["name"]).name
      mp4, sidecar = output_paths(final_dir, leaf)
      os.replace(partial / f"{leaf}.npz", sidecar)   # sidecar first: mp4 + npz = complete
      os.replace(partial / f"{leaf}.mp4", mp4)
      summary["mp4"] = str(mp4.relative_to(out_dir))
      summary["sidecar"] = str(sidecar.relative_to(out_dir))
    return {"tracks": summaries, "frames": analysis.num_frames,
            "duration": round(analysis.num_frames / constants.FPS, 4),
            "source_fps": round(info.source_fps, 4), "size": [info.width, info.height],
            "rotation": info.rotation, "has_audio": info.has_audio,
            "timings": {k: round(v, 3) for k, v in analysis.timings.items()}}
  finally:
    for writer in writers:
      writer.abort()
    store.close()
    shutil.rmtree(partial, ignore_errors=True)
    _remove_empty_parents(partial.parent, stop=out_dir)


def _remove_empty_parents(folder: pathlib.Path, stop: pathlib.Path) -> None:
  """Removes `folder` and its parents up to (not including) `stop` while they are empty."""
  while folder != stop and stop in folder.parents:
    try:
      folder.rmdir()
    except OSError:  # not empty (another worker's files) or already gone
      return
    folder = folder.parent
