"""avdf.batch's worker pool: a pool found broken when the next video is submitted (a worker
died between two submits) loses no video; the in-flight one is reported, the rest run."""
import concurrent.futures

from avdf import batch


class _PoolBrokenAtSubmit:
  """The first pool's worker dies on 'crash', and the pool is known dead at the next submit."""

  def __init__(self, *args, **kwargs):
    del args, kwargs
    _PoolBrokenAtSubmit.pools += 1
    self.first = _PoolBrokenAtSubmit.pools == 1
    self.broken = False

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False

  def submit(self, fn, job):
    del fn
    if self.broken:
      raise batch.BrokenProcessPool("a child process terminated abruptly")
    future = concurrent.futures.Future()
    if self.first and job.video_id == "crash":
      self.broken = True
      future.set_exception(batch.BrokenProcessPool("a child process terminated abruptly"))
    else:
      future.set_result({"video": job.video_id})
    return future


def test_a_pool_broken_at_submit_loses_no_video(monkeypatch):
  monkeypatch.setattr(_PoolBrokenAtSubmit, "pools", 0, raising=False)
  monkeypatch.setattr(batch.concurrent.futures, "ProcessPoolExecutor", _PoolBrokenAtSubmit)
  analysed, recorded = [], []
  jobs = [batch.Job(name, f"{name}.mp4") for name in ("first", "crash", "second", "third")]
  batch._run_pool(jobs, 1, None, False, lambda job, tracked: analysed.append(job.video_id),
                  recorded.append, batch.RunStats())
  assert sorted(analysed) == ["first", "second", "third"]
  assert [(r["input"], r["reason"]) for r in recorded] == [("crash", "worker_crashed")]
