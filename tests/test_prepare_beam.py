"""data.prepare --runner beam with Beam's multi-processing direct runner (2 worker processes)
writes the same shards, byte for byte, and the same manifest as the direct runner, including
the corrupt video of the tiny FF++ tree (slow: worker start-up and tracking take ~2 min here)."""
import json
import os

import pytest

from tests.test_prepare import _prepare, ffpp_root  # noqa: F401 - the fixture is used by name


def _manifest(out):
  """Manifest lines without their timings (the only fields two runs may differ in)."""
  lines = [json.loads(line) for line in (out / "test.manifest.jsonl").read_text().splitlines()]
  for line in lines:
    line.pop("seconds", None)
  return sorted(lines, key=lambda line: line["input"])


@pytest.mark.slow
def test_two_beam_workers_write_the_direct_runners_shards_and_manifest(
    ffpp_root, tmp_path):  # noqa: F811 - pytest's fixture, imported above
  direct, beam = tmp_path / "direct", tmp_path / "beam"
  expected = _prepare(ffpp_root, direct)
  summary = _prepare(ffpp_root, beam, runner="beam",
                     beam_args=["--runner=DirectRunner", "--direct_num_workers=2"])
  assert summary == expected
  assert summary["errors"] == {"Deepfakes/001_000": "no_frames"}  # the corrupt video
  shards = sorted(p.name for p in direct.glob("test-*.tfrecord"))
  assert len(shards) == 2 and shards == sorted(p.name for p in beam.glob("test-*.tfrecord"))
  for name in shards:
    assert (direct / name).read_bytes() == (beam / name).read_bytes(), name
  assert _manifest(direct) == _manifest(beam)
  # The shards were written by Beam's worker processes, not by this one.
  journal = [json.loads(line) for line in (beam / ".shards.jsonl").read_text().splitlines()]
  assert len(journal) == 2 and os.getpid() not in {entry["pid"] for entry in journal}
