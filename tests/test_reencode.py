"""data.reencode: the compression study's HQ / LQ copies of a dataset tree."""
import json

import numpy as np

from data import constants, reencode, video, video_writer


def _clip(path, seconds=1.0, size=(67, 51)):
  rng = np.random.default_rng(0)
  frames = [np.clip(rng.normal(128, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            for _ in range(int(seconds * 25))]
  t = np.arange(int(seconds * constants.SAMPLE_RATE)) / constants.SAMPLE_RATE
  audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
  # An odd frame size, as some datasets have: the copy drops the last row and column.
  return video_writer.write_video(path, frames, fps=25, audio=audio, crf=10,
                                  video_codec="libx264rgb")


def test_hq_and_lq_copies_keep_the_layout_and_lower_the_quality(tmp_path):
  root = tmp_path / "root"
  _clip(root / "RealVideo-RealAudio" / "id1" / "a.mp4")
  (root / "meta_data.csv").write_text("source,target1\n")
  (root / "broken.mp4").write_bytes(b"not a video")
  sizes = {}
  for quality in ("hq", "lq"):
    out = tmp_path / quality
    assert reencode.main(["--root", str(root), "--out", str(out), "--quality", quality]) == 1
    assert (out / "meta_data.csv").read_text() == "source,target1\n"
    copy = out / "RealVideo-RealAudio" / "id1" / "a.mp4"
    info = video.probe(copy)
    assert info.video_codec == "h264" and (info.width, info.height) == (66, 50)
    assert info.source_fps == 25 and video.count_frames(copy, fps=25) == 25
    assert info.audio_sample_rate == {"hq": constants.SAMPLE_RATE, "lq": 16_000}[quality]
    sizes[quality] = copy.stat().st_size
    lines = [json.loads(x) for x in (out / "reencode.manifest.jsonl").read_text().splitlines()]
    assert {x["status"] for x in lines} == {"ok", "error"}
    assert not list(out.rglob("*.partial.mp4"))
  assert sizes["lq"] < sizes["hq"]
  # A re-run keeps finished outputs and retries only what failed.
  assert reencode.reencode_tree(root, tmp_path / "lq", "lq") == 1
