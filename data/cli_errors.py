"""One error convention for every command: a short answer and a documented exit code.

==========  ===================================================================================
exit code   meaning
==========  ===================================================================================
0           done
1           the run failed (e.g. NaN loss, disk full) or some inputs of a batch failed; each
            failure is named on stderr and in the command's manifest / summary
2           usage or input error: a bad argument, a missing, unreadable or unwritable path, a
            bad config or config key, a checkpoint that does not fit, a corrupt record, an
            unreadable input video of a single-video command; nothing was computed or written
3           internal error: a bug; the traceback is printed (please report it)
130         interrupted (Ctrl-C); re-running the same command resumes where that is supported
==========  ===================================================================================

A user error prints one or two lines on stderr, ``error: what is wrong`` and ``  what to do``;
``--verbose`` (``-v``) adds the traceback. Commands wrap their ``main`` with :func:`command`
(argparse) or run through ``data.workdir.run_absl_cli`` (absl + ml_collections configs), and
raise :class:`UserError` (or an exception type they register as a user error) for anything
the user can fix. Output folders are checked with :func:`writable_dir` before any computing.
"""
from __future__ import annotations

import difflib
import errno
import functools
import os
import pathlib
import sys
import tempfile
import traceback
from typing import Callable, Iterable, Mapping, Optional, Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

# Longest message printed for an error (some library errors carry whole arrays).
MAX_MESSAGE_CHARS = 400

# OS errors that are the environment's, not a bug: the message names the file and the cause.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC: EXIT_FAILED, errno.EDQUOT: EXIT_FAILED,
                       errno.EACCES: EXIT_USAGE, errno.EPERM: EXIT_USAGE,
                       errno.EROFS: EXIT_USAGE, errno.ENOENT: EXIT_USAGE,
                       errno.ENOTDIR: EXIT_USAGE, errno.EISDIR: EXIT_USAGE,
                       errno.EEXIST: EXIT_USAGE}


class UserError(Exception):
  """Something the user can fix: `what` is wrong, `todo` says what to do about it."""

  def __init__(self, what: str, todo: str = "", exit_code: int = EXIT_USAGE):
    super().__init__(what)
    self.what, self.todo, self.exit_code = what, todo, exit_code

  def __str__(self) -> str:
    return self.what + (f"; {self.todo}" if self.todo else "")


class RunFailed(UserError):
  """The run stopped for a reason the message explains (exit code 1)."""

  def __init__(self, what: str, todo: str = ""):
    super().__init__(what, todo, exit_code=EXIT_FAILED)


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
  """The first line of `text`, at most `limit` characters (array dumps stay out of messages)."""
  lines = str(text).strip().splitlines() or [""]
  first = lines[0]
  if len(first) > limit:
    first = first[:limit] + " ..."
  return first


def print_error(what: str, todo: str = "", file=None) -> None:
  file = file or sys.stderr
  print(f"error: {shorten(what)}", file=file)
  if todo:
    print(f"  {shorten(todo)}", file=file)


def _os_error_message(error: OSError) -> str:
  name = error.filename or ""
  return f"{name}: {error.strerror}" if name and error.strerror else shorten(str(error))


def verbose_requested(argv: Optional[Sequence[str]]) -> bool:
  argv = sys.argv[1:] if argv is None else argv
  return (any(a in ("-v", "--verbose", "--verbose=true", "--verbose=True") for a in argv)
          or os.environ.get("AVDF_VERBOSE", "") not in ("", "0"))


def handle(run: Callable[[], Optional[int]], *, verbose: bool = False,
           user_errors: Mapping[type, int] | Iterable[type] = ()) -> int:
  """Runs `run()` and turns every way it can end into an exit code (see the module docstring).

  `user_errors`: exception types of the command's libraries that mean a user mistake, mapped to
  their exit code (a plain list means :data:`EXIT_USAGE`). Their message is printed as is.
  """
  if not isinstance(user_errors, Mapping):
    user_errors = {t: EXIT_USAGE for t in user_errors}
  try:
    code = run()
    return EXIT_OK if code is None else int(code)
  except SystemExit as e:  # argparse / parser.error, or a command's explicit exit
    if isinstance(e.code, str):
      print(e.code if e.code.startswith("error:") else f"error: {e.code}", file=sys.stderr)
      return EXIT_USAGE
    return EXIT_OK if e.code is None else int(e.code)
  except KeyboardInterrupt:
    print("error: interrupted; re-run the same command to resume (where supported)",
          file=sys.stderr)
    return EXIT_INTERRUPTED
  except UserError as e:
    if verbose:
      traceback.print_exc()
    print_error(e.what, e.todo)
    return e.exit_code
  except Exception as e:  # noqa: BLE001 - sorted below into user errors and bugs
    for error_type, code in user_errors.items():
      if isinstance(e, error_type):
        if verbose:
          traceback.print_exc()
        print_error(str(e) or type(e).__name__)
        return code
    if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS:
      if verbose:
        traceback.print_exc()
      code = _ENVIRONMENT_ERRNOS[e.errno]
      print_error(_os_error_message(e),
                  "free some space and re-run the same command" if code == EXIT_FAILED else
                  "check the path and its permissions")
      return code
    traceback.print_exc()
    print(f"error: internal error ({type(e).__name__}); this is a bug, please report it with"
          " the traceback above", file=sys.stderr)
    return EXIT_INTERNAL


def command(main: Optional[Callable] = None, *,
            user_errors: Mapping[type, int] | Iterable[type] = ()):
  """Decorates an argparse ``main(argv=None) -> int`` with :func:`handle`.

  The decorated ``main`` never raises for user errors; it returns the exit code, which the
  console script (``sys.exit(main())``) hands to the shell.
  """
  def decorate(function):
    @functools.wraps(function)
    def wrapped(argv: Optional[Sequence[str]] = None) -> int:
      return handle(lambda: function(argv), verbose=verbose_requested(argv),
                    user_errors=user_errors)
    return wrapped
  return decorate(main) if main is not None else decorate


# ---------------------------------------------------------------------------------- paths


def writable_dir(path: str | os.PathLike, flag: str = "--out",
                 create: bool = True) -> pathlib.Path:
  """Creates `path` if needed and proves it writable (a probe file), or raises UserError.

  With ``create=False`` a missing `path` is not made; its nearest existing parent must be a
  writable folder (commands that write nothing until their input has been checked).
  """
  path = pathlib.Path(path)
  if path.exists() and not path.is_dir():
    raise UserError(f"{flag} {path} is a file, not a folder",
                    "give a folder (it is created when missing)")
  if not create and not path.exists():
    parent = path.absolute().parent
    while not parent.exists():
      parent = parent.parent
    if not parent.is_dir():
      raise UserError(f"{flag} {path} cannot be created: {parent} is a file",
                      "give a folder path whose parents are folders")
    _probe(parent, f"{flag} {path}")
    return path
  try:
    path.mkdir(parents=True, exist_ok=True)
  except (FileExistsError, NotADirectoryError):
    raise UserError(f"{flag} {path} cannot be created: a parent of it is a file",
                    "give a folder path whose parents are folders") from None
  except OSError as e:
    raise UserError(f"{flag} {path} cannot be created ({e.strerror})",
                    "give a folder you can write to") from None
  _probe(path, f"{flag} {path}")
  return path


def _probe(folder: pathlib.Path, what: str) -> None:
  try:
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
      pass
  except OSError as e:
    raise UserError(f"{what} is not writable ({folder}: {e.strerror})",
                    "give a folder you can write to") from None


def writable_file(path: str | os.PathLike, flag: str = "--out") -> pathlib.Path:
  """A file path whose folder exists (created if needed) and is writable."""
  path = pathlib.Path(path)
  if path.is_dir():
    raise UserError(f"{flag} {path} is a folder, not a file path", "give a file path")
  writable_dir(path.parent if str(path.parent) else pathlib.Path("."), flag=f"the folder of {flag}")
  return path


def existing(path: str | os.PathLike, flag: str, kind: str = "any") -> pathlib.Path:
  """`path` exists (and is a file / folder when `kind` says so), or raises UserError."""
  path = pathlib.Path(path)
  if not path.exists():
    raise UserError(f"{flag} {path} does not exist", "check the path")
  if kind == "file" and not path.is_file():
    raise UserError(f"{flag} {path} is a folder, not a file", "give a file")
  if kind == "dir" and not path.is_dir():
    raise UserError(f"{flag} {path} is a file, not a folder", "give a folder")
  return path


# --------------------------------------------------------------------------------- configs


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
  """' (did you mean "x"?)' for the nearest candidate, or ''."""
  match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
  return f' (did you mean "{match[0]}"?)' if match else ""


def config_keys(config: Mapping, prefix: str = "") -> list[str]:
  """Every dotted key of a nested mapping (ConfigDict.to_dict() or a plain dict)."""
  keys = []
  for key, value in config.items():
    name = f"{prefix}{key}"
    keys.append(name)
    if isinstance(value, Mapping):
      keys += config_keys(value, name + ".")
  return keys


def unknown_config_key(key: str, config: Mapping, flag: str = "--config") -> UserError:
  """The error for an override of a key the config does not have, naming the nearest one."""
  keys = config_keys(config)
  return UserError(f"{flag}.{key}: the config has no key {key!r}"
                   f"{did_you_mean(key, keys)}",
                   f"see the config file for its keys ({len(keys)} in all)")
