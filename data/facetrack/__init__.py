"""Face tracking: standardised video -> MTCNN + MediaPipe FaceMesh tracks -> aligned faces.

Python use::

  from data import facetrack
  tracks = facetrack.track_video("clip.mp4")        # list of data.tracks.Track, in memory
  tracks = facetrack.track_video("clip.mp4", people_count="robust")   # every confident face
  fast = facetrack.TrackerOptions(detector="jax", schedule="keyframe")
  tracks = facetrack.track_video("clip.mp4", fast)

Command line (streams to disk, parallel, resumable)::

  python -m data.facetrack VIDEO_OR_DIR --out DIR [--workers N] [--max-faces N] [--stride K]
      [--detector keras|jax] [--schedule stride|keyframe] [--people-count faithful|robust]
"""
from data.facetrack.crops import Thresholds
from data.facetrack.detect import MtcnnSettings
from data.facetrack.landmarks import FaceMeshSettings
from data.facetrack.pipeline import FaceTracker
from data.facetrack.pipeline import FrameTooSmallError
from data.facetrack.pipeline import NoFaceError
from data.facetrack.pipeline import TrackerOptions
from data.facetrack.pipeline import track_video
from data.video import VideoError

__all__ = ["FaceMeshSettings", "FaceTracker", "FrameTooSmallError", "MtcnnSettings",
           "NoFaceError", "Thresholds", "TrackerOptions", "VideoError", "track_video"]
