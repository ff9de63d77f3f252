"""data.prepare under faults: a second run, a SIGKILL, stale leftovers, and user mistakes.

The tracker is replaced by tests.prepare_fakes (one tiny record per video) because these tests
are about the bookkeeping: the lock, the journal, the manifest, the summary and the exit code.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from data import prepare
from data import records
from tests import prepare_fakes
from tests.cli_assert import assert_clean_exit
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return prepare_fakes.make_tree(tmp_path_factory.mktemp("ffpp"))


def _args(root, out, *extra):
  return ["--dataset", "ffpp", "--root", str(root), "--split", "test", "--out", str(out),
          "--workers", "0", "--videos-per-shard", "2", "--option", "audio=probe", *extra]


def _shard_digests(out):
  return {p.name: records.file_sha256(p) for p in sorted(out.glob("*.tfrecord"))}


def _journal_ok_lines(out):
  path = out / prepare.JOURNAL
  if not path.is_file():
    return 0
  return sum('"status": "ok"' in line for line in path.read_text().splitlines())


def test_a_second_run_refuses_or_waits_for_the_first(root, tmp_path, monkeypatch, capsys):
  prepare_fakes.install(monkeypatch=monkeypatch)
  out = tmp_path / "out"
  out.mkdir()
  with prepare.exclusive(out, wait=False):
    assert prepare.main(_args(root, out)) == 2
    assert_clean_exit(2, capsys.readouterr().err, 2, "another data.prepare run", "--wait")
    assert not list(out.glob("*.tfrecord"))

  holder = prepare.exclusive(out, wait=False)
  holder.__enter__()
  release = threading.Timer(1.0, holder.__exit__, (None, None, None))
  release.start()
  start = time.perf_counter()
  assert prepare.main(_args(root, out, "--wait")) == 1  # the one broken video
  assert time.perf_counter() - start >= 0.9
  summary = json.loads((out / "test.summary.json").read_text())
  assert summary["videos"] == 8 and summary["shards_complete"] == 4
  assert summary["errors"] == {prepare_fakes.BROKEN: "not_a_video"}


def test_sigkill_then_resume_keeps_every_video_and_error(root, tmp_path, monkeypatch, capsys):
  """Issue 19 case 2: the resumed run's manifest and summary cover the killed run's shards."""
  prepare_fakes.install(monkeypatch=monkeypatch)
  reference = tmp_path / "uninterrupted"
  assert prepare.main(_args(root, reference)) == 1
  capsys.readouterr()

  out = tmp_path / "killed"
  env = dict(os.environ, PREPARE_FAKE_SECONDS="1.5")
  process = subprocess.Popen([sys.executable, "-m", "tests.prepare_fakes", *_args(root, out)],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 240
    while _journal_ok_lines(out) < 1 and time.monotonic() < deadline:
      assert process.poll() is None, "the run ended before it could be killed"
      time.sleep(0.05)
    # The run holds --out: a concurrent run refuses instead of sharing its files (case 1).
    assert prepare.main(_args(root, out)) == 2
    assert "another data.prepare run" in capsys.readouterr().err
    time.sleep(0.5)
    assert list(out.glob("*.partial")), "the kill should land while a shard is being written"
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  assert process.returncode == -signal.SIGKILL
  assert _journal_ok_lines(out) < 4

  assert prepare.main(_args(root, out)) == 1
  assert_clean_exit(1, capsys.readouterr().err, 1, prepare_fakes.BROKEN)
  assert not list(out.glob("*.partial"))
  assert _shard_digests(out) == _shard_digests(reference)
  summary = json.loads((out / "test.summary.json").read_text())
  expected = json.loads((reference / "test.summary.json").read_text())
  assert summary == expected and summary["videos"] == 8 and summary["records"] == 7
  manifest = [json.loads(line) for line in (out / "test.manifest.jsonl").read_text().splitlines()]
  assert len(manifest) == 8

  # A third run has nothing to do and says the same.
  assert prepare.main(_args(root, out)) == 1
  assert json.loads((out / "test.summary.json").read_text()) == expected


def test_shards_are_verified_and_journaled(root, tmp_path, monkeypatch):
  prepare_fakes.install(monkeypatch=monkeypatch)
  out = tmp_path / "out"
  assert prepare.main(_args(root, out)) == 1
  journal = prepare.read_journal(out / prepare.JOURNAL)
  for entry in journal:
    path = out / entry["input"]
    assert entry["records"] == records.count_records(path)
    assert entry["sha256"] == records.file_sha256(path) and entry["size"] == path.stat().st_size

  # A shard on disk that the journal does not vouch for (killed between rename and journal
  # line, or changed since) is redone; a shard that was truncated is redone too.
  (out / prepare.JOURNAL).write_text("".join(json.dumps(e) + "\n" for e in journal[1:]))
  truncated = out / journal[1]["input"]
  truncated.write_bytes(truncated.read_bytes()[:-5])
  before = _shard_digests(out)
  assert prepare.main(_args(root, out)) == 1
  assert _shard_digests(out) == {**before, journal[1]["input"]: journal[1]["sha256"]}
  assert len(prepare.read_journal(out / prepare.JOURNAL)) == 5


def test_a_failed_attempt_stays_in_the_manifest(root, tmp_path, monkeypatch):
  """A video that failed in an earlier attempt and succeeded later keeps its earlier error."""
  calls = []

  def flaky(record):
    calls.append(record.video_id)
    if calls.count(record.video_id) == 1 and record.video_id == "002":
      entry, _ = prepare_fakes.fake_process_video(record)
      return dict(entry, status="error", reason="read_error", message="transient"), []
    if calls.count(record.video_id) == 1 and record.video_id == "003":
      raise OSError(28, "No space left on device")  # the shard of 002 and 003 fails
    return prepare_fakes.fake_process_video(record)

  monkeypatch.setattr(prepare, "process_video", flaky)
  monkeypatch.setattr(prepare, "init_worker", lambda *a, **k: None)
  out = tmp_path / "out"
  assert prepare.main(_args(root, out)) == 1
  summary = json.loads((out / "test.summary.json").read_text())
  assert summary["shards_complete"] == 3 and "002" in summary["errors"]
  assert prepare.main(_args(root, out)) == 1  # the broken video is still broken
  summary = json.loads((out / "test.summary.json").read_text())
  assert summary["shards_complete"] == 4 and summary["videos"] == 8
  assert list(summary["errors"]) == [prepare_fakes.BROKEN]
  assert summary["errors_in_earlier_attempts"] == 1
  manifest = {json.loads(line)["input"]: json.loads(line)
              for line in (out / "test.manifest.jsonl").read_text().splitlines()}
  assert manifest["002"]["status"] == "ok"
  assert manifest["002"]["previous_errors"][0]["reason"] == "read_error"


@pytest.mark.parametrize("change,needle", [
    (lambda a, r, o: a.__setitem__(3, str(r / "missing")), "--root"),
    (lambda a, r, o: a.__setitem__(1, "ffpq"), "unknown dataset 'ffpq'"),
    (lambda a, r, o: a.__setitem__(5, "tset"), "no split 'tset'"),
    (lambda a, r, o: a.__setitem__(7, str(r / "splits" / "test.json")), "is a file"),
    (lambda a, r, o: a.__setitem__(7, str(r / "splits" / "test.json" / "x")), "--out"),
    (lambda a, r, o: a.__setitem__(3, str(r / "manipulated_sequences")), "FaceForensics++"),
    (lambda a, r, o: a.extend(["--option", "compresion=c40"]), "compresion"),
])
def test_user_mistakes_get_one_line_and_exit_2(root, tmp_path, monkeypatch, capsys, change,
                                               needle):
  prepare_fakes.install(monkeypatch=monkeypatch)
  args = _args(root, tmp_path / "out")
  change(args, root, tmp_path)
  assert prepare.main(args) == 2
  assert_clean_exit(2, capsys.readouterr().err, 2, needle)
