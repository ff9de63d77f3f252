"""python -m data.synth.verify ROOT: measures a generated set's ground-truth signals independently.

Reads the mp4 files (not the plans) and prints JSON:

* lip sync: MediaPipe FaceMesh inner-lip gap (landmarks 13-14 over the inter-ocular distance
  33-263) per frame, Pearson r with the frame-wise RMS of the decoded audio; per kind, over
  single-person videos (with two speakers the audio mixes both);
* faces: the fraction of frames in which MTCNN (confidence > 0.9) finds at least as many faces
  as the video has people, on every `--mtcnn-every`-th frame.
"""
from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys
from fractions import Fraction

import av
import numpy as np

from data.synth import layouts
from data.synth import soundtrack
from data.synth import voice

MTCNN_CONFIDENCE = 0.9


def ground_truth(root: pathlib.Path) -> list[dict[str, str]]:
  with open(pathlib.Path(root) / layouts.GROUND_TRUTH_FILE, newline="") as handle:
    return list(csv.DictReader(handle))


def decode_frames(path: pathlib.Path) -> list[np.ndarray]:
  with av.open(str(path)) as container:
    return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def decode_audio(path: pathlib.Path) -> tuple[np.ndarray, int]:
  """Mono float audio and its sample rate."""
  with av.open(str(path)) as container:
    rate = container.streams.audio[0].rate
    chunks = [frame.to_ndarray().mean(axis=0) for frame in container.decode(audio=0)]
  return np.concatenate(chunks), rate


def mouth_openings(frames: list[np.ndarray]) -> np.ndarray:
  """Inner-lip gap over inter-ocular distance per frame (NaN where FaceMesh finds no face)."""
  import mediapipe as mp
  openings = []
  with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                       refine_landmarks=True) as mesh:
    for frame in frames:
      result = mesh.process(frame)
      if not result.multi_face_landmarks:
        openings.append(np.nan)
        continue
      points = np.array([(p.x * frame.shape[1], p.y * frame.shape[0])
                         for p in result.multi_face_landmarks[0].landmark])
      openings.append(np.linalg.norm(points[13] - points[14])
                      / np.linalg.norm(points[33] - points[263]))
  return np.array(openings)


def lip_sync(path: pathlib.Path, fps: Fraction) -> tuple[float, float]:
  """(r between measured mouth opening and audio RMS, fraction of frames with a face)."""
  frames = decode_frames(path)
  audio, rate = decode_audio(path)
  loudness = soundtrack.frame_rms(audio, float(fps), len(frames), rate)
  opening = mouth_openings(frames)
  found = ~np.isnan(opening)
  return voice.correlation(opening[found], loudness[found]), float(found.mean())


def mtcnn_hit_rate(path: pathlib.Path, people: int, every: int | None = None,
                   count: int | None = None, detector=None) -> float:
  """Fraction of frames (every `every`-th, or `count` evenly spaced) with all faces found."""
  if detector is None:
    from mtcnn import MTCNN
    detector = MTCNN()
  frames = decode_frames(path)
  if count:
    frames = [frames[i] for i in np.linspace(0, len(frames) - 1, count).astype(int)]
  elif every:
    frames = frames[::every]
  hits = 0
  for faces in detector.detect_faces(frames):
    hits += sum(face["confidence"] > MTCNN_CONFIDENCE for face in faces) >= people
  return hits / len(frames)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m data.synth.verify",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("root", type=pathlib.Path,
                      help="dataset root written by python -m data.synth (holds "
                      f"{layouts.GROUND_TRUTH_FILE})")
  parser.add_argument("--mtcnn-every", type=int, default=10,
                      help="run MTCNN on every N-th frame; 0 skips it (default 10)")
  args = parser.parse_args(argv)
  if not (args.root / layouts.GROUND_TRUTH_FILE).is_file():
    print(f"{args.root} has no {layouts.GROUND_TRUTH_FILE}; pass the dataset root (e.g. "
          "OUT/FakeAVCeleb_v1.2)", file=sys.stderr)
    return 2
  rows = ground_truth(args.root)
  sync: dict[str, list[float]] = {}
  face_mesh_found, mtcnn = [], []
  detector = None
  if args.mtcnn_every:
    from mtcnn import MTCNN
    detector = MTCNN()
  for row in rows:
    path = args.root / row["path"]
    if row["num_people"] == "1":
      r, found = lip_sync(path, Fraction(row["fps"]))
      sync.setdefault(row["kind"], []).append(round(r, 3))
      face_mesh_found.append(found)
    if detector is not None:
      mtcnn.append(mtcnn_hit_rate(path, int(row["num_people"]), every=args.mtcnn_every,
                                  detector=detector))
  report = {
      "videos": len(rows),
      "lip_sync_r_single_person": {kind: {"min": min(v), "max": max(v), "n": len(v)}
                                   for kind, v in sorted(sync.items())},
      "facemesh_found_min": round(min(face_mesh_found), 4) if face_mesh_found else None,
      "mtcnn_hit_rate_min": round(min(mtcnn), 4) if mtcnn else None,
      "mtcnn_every": args.mtcnn_every,
  }
  print(json.dumps(report, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
