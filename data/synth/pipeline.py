"""Generates a synthetic set: checks the request, plans every video, renders them in parallel.

Planning happens in the parent process (cheap and deterministic: every random draw comes from
`numpy.random.SeedSequence([seed, ...])` keyed by what it is for, never by worker or order);
rendering in a pool of worker processes that rebuild identity portraits from their recipes.
A video that fails to render is recorded in ``synthetic_failures.csv`` and left out of the
metadata; the others are still written, and the summary reports the failure.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
from concurrent import futures
import pathlib
import shutil
import tempfile
import time
import traceback

import tqdm

from data import workers as workers_lib
from data.synth import identities as identities_lib
from data.synth import layouts
from data.synth import photos
from data.synth import plan as plan_lib
from data.synth import render

log = logging.getLogger(__name__)

MIN_SECONDS, MAX_SECONDS = 0.5, 60.0
MIN_HEIGHT = 240


class SynthError(ValueError):
  """A request that cannot be generated; the message says which parameter and what to do."""


@dataclasses.dataclass(frozen=True)
class Config:
  out: pathlib.Path
  identities: int
  videos_per_identity: int
  seed: int = 0
  layout: str = "fakeavceleb"
  fakes_per_video: int | None = None  # None: the layout's default
  min_seconds: float = 2.0
  max_seconds: float = 10.0
  max_height: int = 720
  workers: int = 2
  overwrite: bool = False
  val_fraction: float = identities_lib.DEFAULT_VAL_FRACTION

  @property
  def root(self) -> pathlib.Path:
    return pathlib.Path(self.out) / layouts.root_name(self.layout)


@dataclasses.dataclass
class Summary:
  root: pathlib.Path
  videos: int
  failures: list[tuple[str, str]]
  seconds: float  # wall-clock time of the whole generation
  frames: int
  worker_cpu_seconds: float  # CPU time the rendering processes used (all cores together)


def validate(config: Config) -> None:
  """Raises SynthError for any impossible request, before anything is computed or written."""
  def fail(message: str) -> None:
    raise SynthError(message)

  if config.layout not in layouts.LAYOUTS:
    fail(f"--layout must be one of {', '.join(layouts.LAYOUTS)}, got {config.layout!r}")
  if config.identities < 2:
    fail(f"--identities must be at least 2 (fakes borrow another identity's face or voice), "
         f"got {config.identities}")
  if not 0.0 <= config.val_fraction <= 0.5:
    fail(f"--val-fraction must be between 0 and 0.5, got {config.val_fraction}")
  if config.videos_per_identity < 1:
    fail(f"--videos-per-identity must be at least 1, got {config.videos_per_identity}")
  if config.videos_per_identity > 399:
    fail(f"--videos-per-identity must be at most 399 (5-digit clip numbers 00001-00399), got "
         f"{config.videos_per_identity}")
  if config.layout == "faceforensics" and (config.identities * config.videos_per_identity
                                           > layouts.MAX_FACEFORENSICS_ORIGINALS):
    fail(f"FaceForensics++ numbers originals 000-999, but --identities x --videos-per-identity = "
         f"{config.identities * config.videos_per_identity}; lower one of them")
  kinds = layouts.default_kinds(config.layout)
  if config.fakes_per_video is not None and not 0 <= config.fakes_per_video <= kinds:
    fail(f"--fakes-per-video must be between 0 and {kinds} for the {config.layout} layout, got "
         f"{config.fakes_per_video}")
  if not MIN_SECONDS <= config.min_seconds <= MAX_SECONDS:
    fail(f"--min-seconds must be between {MIN_SECONDS} and {MAX_SECONDS} seconds, got "
         f"{config.min_seconds}")
  if not config.min_seconds <= config.max_seconds <= MAX_SECONDS:
    fail(f"--max-seconds must be between --min-seconds ({config.min_seconds}) and "
         f"{MAX_SECONDS}, got {config.max_seconds}")
  if config.max_height < MIN_HEIGHT:
    fail(f"--max-height must be at least {MIN_HEIGHT} (the smallest resolution is 240p), got "
         f"{config.max_height}")
  if config.workers < 1:
    fail(f"--workers must be at least 1, got {config.workers}")
  _check_output(config)


def _check_output(config: Config) -> None:
  out, root = pathlib.Path(config.out), config.root
  if out.exists() and not out.is_dir():
    raise SynthError(f"--out {out} exists and is not a directory; choose another path")
  if root.exists() and any(root.iterdir()) and not config.overwrite:
    raise SynthError(f"{root} already holds files; pass --overwrite to replace them or choose "
                     "another --out")
  existing = out
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir():
    raise SynthError(f"--out {out} cannot be created: {existing} is a file, not a directory")
  try:  # the only reliable writability test (permissions do not bind root, mounts may be r/o)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
      pass
  except OSError as error:
    raise SynthError(f"--out {out} is not writable ({error.strerror}: {error.filename}); "
                     "choose a directory you can write to") from None


def generate(config: Config) -> Summary:
  """Writes the synthetic set described by `config`; see the package docstring."""
  validate(config)
  start = time.perf_counter()
  recipes = identities_lib.sample_recipes(config.identities, config.seed,
                                          set(photos.photo_names()), config.val_fraction)
  log.info("finding FaceMesh landmarks in %d shipped photos",
           len(identities_lib.needed_photos(recipes)))
  landmarks = photos.find_landmarks(identities_lib.needed_photos(recipes))
  if not set(identities_lib.needed_photos(recipes)) <= set(landmarks):
    # Some photo had no face: draw the recipes again from the photos that do.
    recipes = identities_lib.sample_recipes(config.identities, config.seed, set(landmarks),
                                            config.val_fraction)
  bank = identities_lib.IdentityBank(recipes, landmarks)
  bases = bank.bases()
  reals = plan_lib.real_plans(recipes, config.videos_per_identity, config.seed,
                              config.min_seconds, config.max_seconds, config.max_height)
  kinds = (layouts.default_kinds(config.layout) if config.fakes_per_video is None
           else config.fakes_per_video)
  splits = None
  if config.layout == "fakeavceleb":
    entries = layouts.fakeavceleb_entries(reals, recipes, config.seed, kinds)
  else:
    entries, splits = layouts.faceforensics_entries(reals, recipes, config.seed, kinds)
  root = config.root
  if root.exists() and config.overwrite:
    shutil.rmtree(root)
  root.mkdir(parents=True, exist_ok=True)
  log.info("rendering %d videos (%d real) of %d identities into %s with %d worker(s)",
           len(entries), len(reals), len(recipes), root, config.workers)
  failures, sync, cpu = _render_all(entries, root, recipes, landmarks, bases, config.workers)
  failed = {path for path, _ in failures}
  done = [entry for entry in entries if entry.path not in failed]
  if config.layout == "fakeavceleb":
    layouts.write_fakeavceleb_metadata(root, done)
  else:
    layouts.write_faceforensics_metadata(root, splits)
  layouts.write_csv(root / layouts.GROUND_TRUTH_FILE, layouts.GROUND_TRUTH_COLUMNS,
                    layouts.ground_truth_rows(done, sync))
  layouts.write_csv(root / layouts.IDENTITIES_FILE, layouts.IDENTITY_COLUMNS,
                    layouts.identity_rows(recipes))
  if failures:
    layouts.write_csv(root / layouts.FAILURES_FILE, ("path", "error"),
                      [{"path": p, "error": e} for p, e in sorted(failures)])
  frames = sum(entry.video.plan.num_frames for entry in done)
  return Summary(root, len(done), failures, time.perf_counter() - start, frames, cpu)


def _render_all(entries, root: pathlib.Path, recipes, landmarks, bases,
                workers: int) -> tuple[list[tuple[str, str]], dict[str, float], float]:
  """Renders every entry.

  Returns:
    The failures (path, error), each video's design sync r, and the workers' CPU seconds.


  Every portrait is built once, in parallel; each video job carries the few it needs. Workers
  fork from a server that has the rendering modules loaded (fast start, no fork of a process
  that ran MediaPipe threads). A worker that dies costs a new pool, not the set: the unfinished
  videos are rendered again (data.workers.map_surviving_worker_deaths); a video whose worker
  dies every time is reported as that video's failure.
  """
  needed = sorted({identity for entry in entries for identity in _identities_of(entry.video)})
  context = multiprocessing.get_context("forkserver")
  context.set_forkserver_preload(["data.synth.render", "data.synth.manipulations"])
  new_pool = lambda: futures.ProcessPoolExecutor(  # noqa: E731
      workers, mp_context=context, initializer=workers_lib.initializer, initargs=(None,))
  portraits, cpu = {}, 0.0
  for identity, result, error in workers_lib.map_surviving_worker_deaths(
      new_pool, {identity: (_build_portrait, recipes, landmarks, bases, identity)
                 for identity in needed}):
    if error is not None:
      raise error
    portraits[identity], seconds = result
    cpu += seconds
  # Longest first, so the pool does not end waiting on one late long video.
  ordered = sorted(entries, key=lambda e: (-e.video.plan.num_frames * e.video.plan.width
                                           * e.video.plan.height, e.path))
  failures, sync = [], {}
  progress = tqdm.tqdm(total=len(ordered), unit="video", desc="synth")
  calls = {entry.path: (_render_job, entry.path, entry.video.plan,
                        {i: portraits[i] for i in _identities_of(entry.video)}, str(root))
           for entry in ordered}
  for path, result, error in workers_lib.map_surviving_worker_deaths(new_pool, calls):
    progress.update()
    if error is None:
      sync[path], seconds = result
      cpu += seconds
    else:  # one bad video must not stop the set
      detail = traceback.format_exception_only(type(error), error)[-1].strip()
      failures.append((path, detail))
      log.error("could not render %s: %s", path, detail)
  progress.close()
  return failures, sync, cpu


def _identities_of(video) -> set[str]:
  people = video.plan.people
  return {p.identity for p in people} | {p.face_donor for p in people if p.face_donor}


def _build_portrait(recipes, landmarks, bases,
                    identity: str) -> tuple[identities_lib.Portrait, float]:
  import cv2
  cv2.setNumThreads(1)
  start = time.process_time()
  portrait = identities_lib.IdentityBank(recipes, landmarks, bases).portrait(identity)
  return portrait, time.process_time() - start


def _render_job(path: str, video_plan, portraits, root: str) -> tuple[float, float]:
  """Renders one video in a worker process; returns its design sync r and the CPU seconds."""
  import cv2
  cv2.setNumThreads(1)  # processes, not threads, share the cores
  start = time.process_time()
  bank = identities_lib.IdentityBank([], {}, {}, portraits=portraits)
  target = pathlib.Path(root) / path
  target.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".partial-", suffix=".mp4",
                                   delete=False) as handle:
    partial = pathlib.Path(handle.name)
  try:
    sync_r = render.render_video(video_plan, bank, partial)
    partial.replace(target)  # a complete file or none at all
  finally:
    partial.unlink(missing_ok=True)
  return sync_r, time.process_time() - start
