"""One tracked video -> both detectors -> per-face and per-video result (JSON) + report media."""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

from avdf import calibration as calibration_lib
from avdf import detectors
from avdf import fusion


@dataclasses.dataclass
class Analysis:
  """`result` is JSON-serialisable; `media` holds the images the HTML report embeds."""
  result: dict
  media: dict


def _face_entry(track, fakeout: Optional[dict], inconsistency: Optional[dict],
                calibration: Optional[calibration_lib.Calibration]) -> dict:
  face = {"face": int(track.track_index), "name": track.name, "num_frames": track.num_frames,
          "detected_fraction": round(float(track.detected_fraction), 3),
          "has_audio": bool(track.has_audio), "fakeout": None, "intra": None, "cross": None,
          "inconsistency": None, "inconsistency_status": "not run", "flags": []}
  if fakeout is not None:
    face["fakeout"] = fakeout["score"]
    face["clips"] = fakeout["clips"]
    top = max(fakeout["clips"], key=lambda c: c["score"])
    face["fakeout_top_clip"] = top
    if fakeout["silent_input"]:
      face["flags"].append(
          "FakeOut scored this face with silent (all-zero) audio: " +
          ("the video has no audio" if not track.has_audio else
           "the released code's rule for a face of a multi-face video"))
  if inconsistency is not None:
    face["inconsistency_status"] = inconsistency["status"]
    face["flags"] += inconsistency["flags"]
    if inconsistency["status"] == "ok":
      s = inconsistency["score"]
      face.update(intra=s["intra"], cross=s["cross"],
                  inconsistency=fusion.inconsistency_score(s["intra"], s["cross"]),
                  windows=inconsistency["windows"],
                  flagged_windows=inconsistency["flagged_windows"],
                  identity_matrix=inconsistency["identity_matrix"])
      if "cross_matrix" in inconsistency:
        face["cross_matrix"] = inconsistency["cross_matrix"]
  fused = fusion.face_probability(face, calibration)
  face.update(probability=fused["probability"], fit=fused["fit"])
  if fused["note"]:
    face["note"] = fused["note"]
    face["flags"].append(fused["note"])
  face["verdict"] = fusion.verdict(face["probability"],
                                   calibration.threshold if calibration else 0.5)
  return face


def analyse(video_path: str, video_id: str, tracks: Sequence, fakeout, inconsistency,
            calibration: Optional[calibration_lib.Calibration],
            serialized: Optional[Sequence[bytes]] = None) -> Analysis:
  """Runs both detectors (either may be None) on the tracks of one video and fuses them.

  `serialized`: the tracks' records (detectors.serialize_tracks; made here when not given).
  """
  timings = {}
  if serialized is None:
    serialized = detectors.serialize_tracks(video_path, video_id, tracks)
  start = time.perf_counter()
  f_scores = fakeout.score_tracks(tracks, serialized) if fakeout is not None else {}
  timings["fakeout_s"] = round(time.perf_counter() - start, 3)
  start = time.perf_counter()
  i_scores = (inconsistency.score_tracks(tracks, serialized)
              if inconsistency is not None else {})
  timings["inconsistency_s"] = round(time.perf_counter() - start, 3)
  faces, media = [], {}
  for track in tracks:
    k = int(track.track_index)
    f, i = f_scores.get(k), i_scores.get(k)
    faces.append(_face_entry(track, f, i, calibration))
    media[k] = {"thumbnails": f["thumbnails"] if f else [],
                "window_faces": i["window_faces"] if i else {},
                "frame": track.frames_224[len(track.frames_224) // 2]
                if track.frames_224 is not None else None}
  result = {"video": str(video_path), "video_id": video_id,
            **fusion.video_verdict(faces, calibration), "faces": faces,
            "settings": {
                "fakeout": fakeout.settings() if fakeout is not None else None,
                "inconsistency": inconsistency.settings() if inconsistency is not None else None,
                "calibration": (None if calibration is None else
                                {"file": calibration.source.get("file", ""),
                                 "method": calibration.method,
                                 "threshold": calibration.threshold,
                                 "fitted_on": calibration.source.get("records", "")})},
            "timings": timings}
  return Analysis(result=result, media=media)
