"""The run directory (``--out``): the checkpoints of one training run, guarded so that none is
lost by accident.

- Training into a directory that already holds a run (a ``last`` or ``best`` checkpoint) is
  refused unless the caller says what it wants: ``resume`` continues that run, ``overwrite``
  deletes its checkpoints first (so ``step-N`` checkpoints of two runs never mix).
- One run at a time: a training run holds ``OUT/.lock`` (its process id, host and command)
  while it writes; a second run into the same directory is refused and told who holds it. A
  lock left by a process that is gone (killed, crashed) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hybridseq.curves import CURVES_FILE

LOCK = ".lock"
CHECKPOINTS = ("last", "best")


class RunDirError(ValueError):
    """The output directory cannot take this run; the message says why and what to do."""


def prepare(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """Check (and with ``overwrite``, clear) ``out_dir`` before a run writes to it.

    Raises:
        RunDirError: ``out_dir`` is a file, or it holds a run and neither ``resume`` nor
            ``overwrite`` is given (the message names the run's step and best score).
    """
    if resume and overwrite:
        raise RunDirError("give --resume (continue the run) or --overwrite (replace it), not both")
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"--out {out_dir}: is a file; the output must be a directory")
    if resume or not holds_run(out_dir):
        return
    if not overwrite:
        raise RunDirError(
            f"{out_dir} already holds a training run ({describe(out_dir)}); continue it with "
            "--resume, replace it with --overwrite, or choose another --out"
        )
    _refuse_if_in_use(out_dir)  # never delete the checkpoints of a run going on
    for path in _run_files(out_dir):
        shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(out_dir / "tensorboard", ignore_errors=True)  # its curves go with it
    (out_dir / CURVES_FILE).unlink(missing_ok=True)


def holds_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` has checkpoints of a run (also one interrupted mid-save)."""
    return any(p.is_dir() for p in _run_files(out_dir))


def _run_files(out_dir: Path) -> list[Path]:
    """A run's checkpoint directories: last, best, step-N, and their .tmp / .old copies."""
    if not out_dir.is_dir():
        return []
    names = [*CHECKPOINTS, *(p.name for p in out_dir.glob("step-*"))]
    return [out_dir / f"{n}{end}" for n in names for end in ("", ".tmp", ".old")]


def describe(out_dir: Path) -> str:
    """``last: step 200, best: loss 0.01, exact_match 1 at step 200``, from the checkpoints'
    metrics."""
    parts = []
    last, best = _metrics(out_dir / "last"), _metrics(out_dir / "best")
    if "step" in last:
        parts.append(f"last: step {last['step']}")
    scores = [f"{k} {v:.4g}" for k, v in best.items() if k != "step" and _is_number(v)]
    if scores:
        at = f" at step {best['step']}" if "step" in best else ""
        parts.append(f"best: {', '.join(scores)}{at}")
    return ", ".join(parts) or "its checkpoints have no metrics"


def best_metrics(out_dir: Path) -> dict[str, float]:
    """The validation metrics of the run's ``best`` checkpoint ({} when it has none)."""
    return {k: v for k, v in _metrics(out_dir / "best").items() if _is_number(v)}


def _metrics(checkpoint: Path) -> dict[str, Any]:
    try:
        found = json.loads((checkpoint / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@contextlib.contextmanager
def lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.lock`` while the body runs; a live holder is a RunDirError naming it,
    a dead one's lock is taken over. A process the holder started (a rank of its
    data-parallel run) is part of its run and passes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    file = out_dir / LOCK
    if not _create(file):
        if _read(file).get("pid") == os.getppid():
            yield
            return
        _refuse_if_in_use(out_dir)
        file.unlink(missing_ok=True)  # its process is gone: take the lock over
        if not _create(file):
            raise RunDirError(f"{out_dir} was just taken by another training run")
    try:
        yield
    finally:
        if _read(file).get("pid") == os.getpid():
            file.unlink(missing_ok=True)


def _refuse_if_in_use(out_dir: Path) -> None:
    """A RunDirError naming the live process that holds ``out_dir``'s lock, if one does."""
    file = out_dir / LOCK
    holder = _read(file)
    if file.exists() and holder.get("pid") != os.getppid() and _alive(holder):
        raise RunDirError(
            f"{out_dir} is in use by another training run ({_who(holder)}); wait for it, "
            f"stop it, or choose another --out (no such run going on? delete {file})"
        )


def _create(file: Path) -> bool:
    """Create the lock file with this process' details; False if it exists already."""
    try:
        fd = os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
    }
    with os.fdopen(fd, "w") as fh:
        json.dump(holder, fh)
    return True


def _read(file: Path) -> dict[str, Any]:
    try:
        holder = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the lock's process still runs. A lock from another host cannot be checked
    and counts as alive; an unreadable one (a holder that died while writing it) as dead."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _who(holder: dict[str, Any]) -> str:
    return (
        f"process {holder.get('pid')} on {holder.get('host')}, started "
        f"{holder.get('started')}: {holder.get('command')}"
    )
