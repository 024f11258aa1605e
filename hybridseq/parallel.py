"""Data-parallel training on CPU: ``train.processes`` worker processes, one model replica each.

Every rank draws the same batch order (it is seeded), trains on its stride of each batch
(``idx[rank::N]``), and one all-reduce per step sums the gradients weighted by each shard's
target positions, so every replica takes the update of the whole batch (up to the order of
float additions; a parameter no rank used gets a zero gradient, not none). The same
all-reduce carries rank 0's clock (the learning-rate schedule may follow minutes, and must agree
on every rank) and its stop requests (time budget, Ctrl-C). Rank 0 validates, logs and writes
the checkpoints; the launcher relays its log lines and returns its result.

For CPUs where one process's threads scale poorly over a small model's many small operations.
On the 2-core machine of BENCHMARKS.md, two one-thread processes were as fast as one two-thread
process (the all-reduce of 2.4 M gradients costs ~6.5 ms there, ~4 % of a step).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import queue as queues
import signal
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from hybridseq.config import Config, ConfigError


@dataclass(frozen=True)
class StepSync:
    """What every rank knows after a step's gradient exchange: the batch's target positions
    and rank 0's clock and stop requests (the same values on every rank)."""

    tokens: int
    seconds: float
    time_up: bool
    signum: int  # a stop signal rank 0 received (0: none)


@dataclass
class World:
    """This process's place among the data-parallel ranks; ``World()`` is one process alone,
    for which every exchange is the identity."""

    rank: int = 0
    size: int = 1
    interrupt: Any = None  # a multiprocessing Event the launcher sets on Ctrl-C

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def shard(self, idx: Sequence[int]) -> list[int]:
        """This rank's part of a batch (possibly empty when the batch is small)."""
        return list(idx[self.rank :: self.size])

    def reseed(self, seed: int, step: int, generator: torch.Generator) -> None:
        """Distinct dropout and sampling draws per rank; rank 0 keeps a single process's."""
        if self.rank:
            torch.manual_seed(seed + 7919 * self.rank + step)
            generator.manual_seed(seed + 7919 * self.rank + step)

    def sync(
        self, params: Sequence[Tensor], n_local: int, seconds: float, time_up: bool, signum: int
    ) -> StepSync:
        """Replace each gradient by the batch-wide token-weighted mean.

        Each rank's loss is a mean over its own ``n_local`` target positions; the sum of
        ``grad * n_local`` over ranks divided by the sum of ``n_local`` is the gradient of the
        whole batch's mean. Rank 0's ``seconds``, ``time_up`` and ``signum`` (or the launcher's
        interrupt, as SIGINT) ride along.
        """
        if self.lead and not signum and self.interrupt is not None and self.interrupt.is_set():
            signum = int(signal.SIGINT)
        if self.size == 1:
            return StepSync(n_local, seconds, time_up, signum)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        extra = [n_local, seconds, time_up, signum] if self.lead else [n_local, 0, 0, 0]
        flat = torch.cat([g.reshape(-1) * n_local for g in grads] + [torch.tensor(extra).float()])
        dist.all_reduce(flat)
        total = float(flat[-4])
        offset = 0
        for p, g in zip(params, grads, strict=True):
            p.grad = (flat[offset : offset + g.numel()] / max(total, 1.0)).view_as(g)
            offset += g.numel()
        return StepSync(round(total), float(flat[-3]), bool(flat[-2] > 0), round(float(flat[-1])))

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (early stopping is decided at validation)."""
        if self.size == 1:
            return flag
        t = torch.tensor([float(flag)])
        dist.broadcast(t, src=0)
        return bool(t[0] > 0)


def check(cfg: Config, device: torch.device) -> None:
    if cfg.train.processes > 1 and device.type != "cpu":
        raise ConfigError(
            f"train.processes: {cfg.train.processes} trains on CPU only (gloo); "
            f"train.device resolved to {device.type}: set train.device=cpu or processes=1"
        )


def launch(
    run: Callable[..., Any],
    cfg: Config,
    out_dir: Path,
    resume: bool,
    log: Callable[[str], None],
    data: dict[str, list] | None = None,
):
    """Start ``cfg.train.processes`` workers, each calling ``run`` (``training.run``) with its
    ``World``; relay rank 0's log, return its TrainResult.

    Ctrl-C asks the workers to stop after the current step; rank 0 then saves ``last``.
    """
    world = cfg.train.processes
    if cfg.train.threads is None:  # torch's default (all cores) in every process oversubscribes
        per = max(1, (os.cpu_count() or world) // world)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=per))
    ctx = mp.get_context("spawn")
    messages, interrupt = ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp, "rendezvous").as_uri()
        workers = [
            ctx.Process(
                target=_worker,
                args=(run, rank, world, init, cfg, out_dir, resume, data, messages, interrupt),
            )
            for rank in range(world)
        ]
        for w in workers:
            w.start()
        try:
            try:
                return _relay(messages, workers, log)
            except KeyboardInterrupt:
                interrupt.set()
                log("interrupt: the workers stop after this step and save `last`")
                return _relay(messages, workers, log)
        finally:
            for w in workers:
                w.join(timeout=10)
                if w.is_alive():
                    w.terminate()


def _relay(messages, workers: list, log: Callable[[str], None]):
    while True:
        try:
            kind, *body = messages.get(timeout=0.5)
        except queues.Empty:
            failed = [(r, w.exitcode) for r, w in enumerate(workers) if w.exitcode]
            if failed:
                rank, code = failed[0]
                raise RuntimeError(f"training process {rank} exited with code {code}") from None
            continue
        if kind == "log":
            log(body[0])
        elif kind == "result":
            return body[0]
        else:  # error: (rank, exception or None, traceback text)
            rank, error, text = body
            for w in workers:
                w.terminate()
            if error is not None:
                raise error
            raise RuntimeError(f"training process {rank} failed:\n{text}")


def _worker(run, rank, world, init, cfg, out_dir, resume, data, messages, interrupt) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher turns Ctrl-C into `interrupt`
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        log = (lambda m: messages.put(("log", m))) if rank == 0 else (lambda m: None)
        result = run(cfg, out_dir, resume, log, World(rank, world, interrupt), data)
        if rank == 0:
            messages.put(("result", result))
    except BaseException as e:  # noqa: BLE001 - reported to the launcher, which re-raises
        messages.put(("error", rank, _picklable(e), traceback.format_exc()))
    finally:
        dist.destroy_process_group()


def _picklable(e: BaseException) -> BaseException | None:
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:  # noqa: BLE001
        return None
    return e
