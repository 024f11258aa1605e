"""The training loop, ``run``, and the named steps it is made of.

Each step: this rank's shard of a batch -> forward (teacher forcing at the scheduled ratio) ->
loss over real target positions -> backward -> gradient exchange with the other ranks (none
for one process) -> clip -> optimizer and learning-rate steps. Every ``eval_every`` steps:
validation loss and free-running decoding metrics, a ``last`` checkpoint (with the trainer
state, for ``resume``) and, when the selection metric improved, a ``best`` one. Ctrl-C,
SIGTERM and SIGHUP stop the run after the current step with ``last`` saved (``signals``), so
an interrupted run loses nothing and resumes exactly.

One process is the world-size-1 case of data-parallel training (``parallel.World``, torchrun
and DistributedDataParallel): the loop has no branch on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from hybridseq import metrics, parallel, rundir
from hybridseq.checkpoint import (
    load_checkpoint,
    load_trainer_state,
    prune_step_checkpoints,
    save_checkpoint,
)
from hybridseq.codec import Codec
from hybridseq.config import Config, ConfigError, TrainConfig
from hybridseq.corpus import Split, filter_lengths, fit_codec, read_splits, with_data_sizes
from hybridseq.cudagraph import GraphedBackward
from hybridseq.curves import CurveWriter
from hybridseq.data import Batch, batch_indices, collate, pair_lengths
from hybridseq.losses import loss_kind, sequence_loss
from hybridseq.model import Seq2Seq, build_model
from hybridseq.parallel import StepSync, World
from hybridseq.predict import score
from hybridseq.prepared import MappedItems, is_prepared, prepared_splits
from hybridseq.signals import StopRequests

Pairs = dict[str, list]  # split name -> raw (source, target[, covariates]) pairs


@dataclass
class TrainResult:
    """What a finished (or interrupted) run leaves behind."""

    out_dir: Path
    step: int
    best: dict[str, float]  # validation metrics of the best checkpoint
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    signum: int = 0  # the stop signal that ended the run (0: it finished)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device: cuda, but torch {torch.__version__} sees no CUDA device here; "
            "set train.device=cpu (or auto)"
        )
    return torch.device(name)


def teacher_forcing_ratio(cfg: TrainConfig, step: int) -> float:
    """Scheduled sampling (Bengio et al. 2015, §2.4): the probability of feeding the gold token,
    decaying with the step from ``teacher_forcing`` to ``min_teacher_forcing``."""
    p0, k = cfg.teacher_forcing, cfg.sampling_k
    if cfg.sampling_schedule == "linear":
        p = p0 * (1.0 - step / k)
    elif cfg.sampling_schedule == "exponential":
        p = p0 * k**step
    elif cfg.sampling_schedule == "inverse_sigmoid":
        p = p0 * k / (k + math.exp(min(step / k, 700.0)))
    else:
        p = p0
    return max(cfg.min_teacher_forcing, min(p0, p))


def lr_factor(cfg: TrainConfig, step: int, minutes: float = 0.0) -> float:
    """Linear warm-up, then the chosen decay; multiplies train.lr. The decay runs over
    max_steps, or over max_minutes of training (``minutes`` so far) when decay_horizon says so."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.decay_horizon == "minutes":
        done = minutes / cfg.max_minutes
    else:
        done = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    floor = cfg.min_lr_ratio
    if cfg.decay == "linear":
        return floor + (1 - floor) * max(0.0, 1.0 - done)
    if cfg.decay == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    if cfg.decay == "inverse_sqrt":
        return math.sqrt(max(1, cfg.warmup_steps) / max(step + 1, cfg.warmup_steps, 1))
    return 1.0


def selection(cfg: TrainConfig, codec: Codec) -> str:
    """Which validation number picks the best checkpoint."""
    if cfg.select != "auto":
        return cfg.select
    if codec.target.is_tokens and cfg.metrics:
        return cfg.metrics[0]
    return "loss"


def is_better(name: str, new: dict[str, float], old: dict[str, float] | None) -> bool:
    """Whether validation ``new`` beats ``old`` on metric ``name``; a tie goes to the lower
    validation loss."""
    if old is None or name not in old:
        return True
    if new[name] == old[name]:
        return new.get("loss", math.inf) < old.get("loss", math.inf)
    return (new[name] < old[name]) == metrics.lower_is_better(name)


def weight_average(model: Seq2Seq, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights (Polyak & Juditsky 1992), or None when
    ``decay`` is 0. Its decay ramps in as min(decay, (1 + n) / (10 + n)) after n updates, so
    the early average is not dominated by the untrained weights."""
    if not decay:
        return None

    def ema_(averaged: list[Tensor], current: list[Tensor], n: Tensor) -> None:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        torch._foreach_lerp_(averaged, current, 1.0 - d)

    return AveragedModel(model, multi_avg_fn=ema_)


@dataclass
class Progress:
    """Where a run stands; saved with every ``last`` checkpoint so ``resume`` continues here."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    best_score: float | None = None  # the selection metric of `best`
    best_loss: float | None = None  # and its validation loss (ties go to the lower)
    bad_evals: int = 0  # validations since the selection metric last improved
    seconds: float = 0.0  # training time so far, over all resumed parts


@dataclass
class Interval:
    """The steps since the last curve point: their summed loss (kept on the device, read once
    per point) and where the clock and the token count stood at its start."""

    loss: Tensor | float = 0.0
    steps: int = 0
    tokens: int = 0
    start: float = 0.0


@dataclass
class Trainer:
    """A run in progress: what ``setup`` builds, and what every named step reads or advances."""

    cfg: Config
    out_dir: Path
    device: torch.device
    codec: Codec
    splits: dict[str, Split]
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    world: World
    log: Callable[[str], None]
    kind: str  # the loss (``losses.sequence_loss``)
    select: str  # the validation number that picks `best`
    generator: torch.Generator  # scheduled sampling's draws
    net: torch.nn.Module | None = None  # what training calls: the model, or its DDP
    progress: Progress = field(default_factory=Progress)
    scheduler: LambdaLR | None = None
    ema: AveragedModel | None = None
    graphs: GraphedBackward | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    loss: Tensor | None = None  # the last step's (0-d), ratio its teacher forcing
    ratio: float = 1.0
    in_step: bool = False  # inside train_batch: the state is not whole until it returns
    tokens: int = 0  # target positions trained on in this part of the run
    curves: CurveWriter | None = None  # rank 0's metrics.jsonl (and TensorBoard)
    interval: Interval = field(default_factory=lambda: Interval())
    started: float = 0.0  # perf_counter() when this part of the run started
    seconds_before: float = 0.0  # training time of the parts before it

    @property
    def evaluated(self) -> Seq2Seq:
        """What validation sees and checkpoints hold: the weight average, if kept."""
        return self.model if self.ema is None else self.ema.module

    @property
    def params(self) -> list[Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]


# --------------------------------------------------------------------------- the loop


def train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    data: Pairs | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train a model into ``out_dir`` (see ``_train``), guarding the directory: one that
    holds a run already needs ``resume`` (continue it; a run that reached its limits has
    nothing to do) or ``overwrite`` (replace it), and one run at a time writes there
    (``hybridseq.rundir``; the ranks of a data-parallel run count as one)."""
    out_dir = Path(out_dir)
    if resume and (done := already_done(cfg, out_dir, log)) is not None:
        return done
    if os.environ.get("RANK", "0") != "0":  # a torchrun rank but the first: rank 0 guards
        return _train(cfg, out_dir, resume, log, data)
    rundir.prepare(out_dir, resume, overwrite)
    with rundir.lock(out_dir):
        return _train(cfg, out_dir, resume, log, data)


def already_done(cfg: Config, out_dir: Path, log: Callable[[str], None]) -> TrainResult | None:
    """The result of a resumed run that has reached its limits (max_steps, max_epochs or
    max_minutes) already: nothing to train, and its checkpoints stay as they are. None when
    there is training left."""
    state, tc = load_trainer_state(out_dir / "last"), cfg.train
    step, epoch, minutes = state["step"], state.get("epoch", 0), state.get("seconds", 0.0) / 60
    limits = [
        (step >= tc.max_steps, f"train.max_steps {tc.max_steps}"),
        (tc.max_epochs is not None and epoch >= tc.max_epochs, f"train.max_epochs {tc.max_epochs}"),
        (tc.max_minutes is not None and minutes >= tc.max_minutes, "train.max_minutes"),
    ]
    reached = [name for hit, name in limits if hit]
    if not reached:
        return None
    log(f"nothing to do: {out_dir} finished at step {step} ({reached[0]}); raise it to go on")
    return TrainResult(out_dir, step, rundir.best_metrics(out_dir))


def _train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    data: Pairs | None = None,
) -> TrainResult:
    """Train a model; checkpoints go to ``out_dir/last`` and ``out_dir/best``.

    ``data`` gives the splits' raw pairs in memory (the forecaster's windows) instead of
    ``cfg.data``'s files. Started by torchrun, this process is one rank of a data-parallel
    run (``hybridseq.parallel``); with ``train.processes`` N > 1 it starts N ranks itself.
    Either way the result is the same run's, rank 0's."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.train.processes > 1 and "WORLD_SIZE" not in os.environ:
        parallel.check(cfg, pick_device(cfg.train.device))
        return parallel.launch(_rank, _per_rank_threads(cfg), out_dir, resume, data)
    world = World.from_env(pick_device(cfg.train.device))
    try:
        return run(cfg, out_dir, resume, log if world.lead else _quiet, world, data)
    finally:
        world.close()


def _rank(cfg: Config, out_dir: Path, resume: bool, data: Pairs | None) -> tuple[str, Any]:
    """One rank started by ``train.processes``: ("ok", its result) or ("error", a user's
    error, which the caller raises as one process would)."""
    try:
        return "ok", train(cfg, out_dir, resume, print, data)
    except (ConfigError, ValueError, FileNotFoundError) as e:  # DataError, CheckpointError too
        return "error", e


def _per_rank_threads(cfg: Config) -> Config:
    """torch's default of all cores in every rank oversubscribes: the cores over the ranks."""
    if cfg.train.threads is not None:
        return cfg
    per = max(1, (os.cpu_count() or 1) // cfg.train.processes)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=per))


def _quiet(message: str) -> None:
    """The log of ranks other than 0."""


def run(
    cfg: Config,
    out_dir: Path,
    resume: bool,
    log: Callable[[str], None],
    world: World,
    data: Pairs | None = None,
) -> TrainResult:
    """The loop behind ``train``, as rank ``world.rank`` (rank 0 validates and saves)."""
    log = tqdm.write if log is print else log  # lines above the progress bar, not through it
    t = setup(cfg, out_dir, resume, log, world, data)
    tc = t.cfg.train
    bar = tqdm(total=tc.max_steps, initial=t.progress.step, disable=_bar_off(t))
    with StopRequests() as stop:
        try:
            done = tc.validate_first and not resume and checkpoint(t)
            while not done:
                for batches in epoch_batches(t):
                    sync = train_batch(t, batches, stop)
                    show_progress(bar, t)
                    if sync.signum:
                        return interrupted(t, sync.signum)
                    done = t.progress.step >= tc.max_steps or sync.time_up
                    if done or t.progress.step % tc.eval_every == 0:
                        done = checkpoint(t) or done
                    if done:
                        break
                else:
                    done = next_epoch(t)
        except KeyboardInterrupt:  # a second signal: stop now
            return interrupted(t, signal.SIGINT)
        finally:
            bar.close()
    return finished(t)


# --------------------------------------------------------------------------- its steps


def epoch_batches(t: Trainer) -> list[list[list[int]]]:
    """The rest of the current epoch's steps, each ``train.accumulate`` batches (indices into
    the training items), in the order every rank draws: length-bucketed and shuffled with the
    epoch's seed; with ``train.batch_tokens``, batches of at most that many source + target
    positions, padding included."""
    tc, items = t.cfg.train, t.splits["train"].items
    order = batch_indices(
        bucket_lengths(items, tc.batch_tokens is not None),
        tc.batch_size,
        bucket=tc.bucket,
        shuffle=True,
        seed=tc.seed + t.progress.epoch,
        max_tokens=tc.batch_tokens,
    )[t.progress.batch_in_epoch :]
    return [order[i : i + tc.accumulate] for i in range(0, len(order), tc.accumulate)]


def bucket_lengths(items: Sequence, by_tokens: bool) -> list[int]:
    """Each example's length for batching: source + target with token batches, else the
    longer side (read from the offsets of a prepared corpus, not example by example)."""
    if isinstance(items, MappedItems):
        src, tgt = items.lengths("source"), items.lengths("target")
        return (src + tgt if by_tokens else np.maximum(src, tgt)).tolist()
    return [len(x[0]) + len(x[1]) for x in items] if by_tokens else pair_lengths(items)


def train_batch(t: Trainer, batches: list[list[int]], stop: StopRequests) -> StepSync:
    """One optimisation step on this rank's shards of ``batches`` (``train.accumulate`` of
    them, gradients summed); every rank returns the same ``StepSync`` (rank 0's clock, any
    rank's stop request)."""
    tc, progress = t.cfg.train, t.progress
    t.in_step = True
    ratio = teacher_forcing_ratio(tc, progress.step)
    loss, n_batch = accumulate_gradients(t, batches, ratio)
    seconds = t.seconds_before + time.perf_counter() - t.started
    time_up = tc.max_minutes is not None and seconds / 60 > tc.max_minutes
    sync = t.world.sync(seconds, time_up, stop.signum)
    grad_norm = clip_gradients(t, progress.step + 1)
    t.optimizer.step()
    t.scheduler.step()
    if t.ema is not None:
        t.ema.update_parameters(t.model)
    progress.step, progress.batch_in_epoch = (
        progress.step + 1,
        progress.batch_in_epoch + len(batches),
    )
    progress.seconds, t.tokens = sync.seconds, t.tokens + n_batch
    t.loss, t.ratio, t.in_step = loss, ratio, False
    record_step(t, loss.detach(), grad_norm)
    return sync


def clip_gradients(t: Trainer, step: int) -> Tensor | None:
    """Clip the gradient norm to ``train.clip``; returns the norm before clipping on the
    steps that write a curve point (None on the others, where no norm is read)."""
    tc = t.cfg.train
    logged = t.curves is not None and step % tc.log_every == 0
    if tc.clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(t.model.parameters(), tc.clip)
        return norm if logged else None
    return torch.nn.utils.clip_grad_norm_(t.model.parameters(), math.inf) if logged else None


def record_step(t: Trainer, loss: Tensor, grad_norm: Tensor | None) -> None:
    """Add the step to the interval; every ``train.log_every`` steps, rank 0 writes a
    ``train`` curve point: the interval's mean loss, the learning rate, target tokens per
    second, the gradient norm and the teacher-forcing ratio."""
    iv = t.interval
    iv.loss, iv.steps = iv.loss + loss, iv.steps + 1
    if t.curves is None or t.progress.step % t.cfg.train.log_every:
        return
    now = time.perf_counter()
    point = {
        "loss": float(iv.loss) / iv.steps,
        "lr": t.scheduler.get_last_lr()[0],
        "tokens_per_s": (t.tokens - iv.tokens) / max(now - iv.start, 1e-9),
        "grad_norm": float(grad_norm) if grad_norm is not None else math.nan,
        "teacher_forcing": t.ratio,
    }
    t.curves.write("train", t.progress.step, point)
    t.interval = Interval(0.0, 0, t.tokens, now)


def accumulate_gradients(t: Trainer, batches: list[list[int]], ratio: float) -> tuple[Tensor, int]:
    """Forward and backward of this rank's shard of every batch of a step, each loss weighted
    by its share of the step's target positions, so that the summed (and, under DDP, rank-
    averaged) gradient is the gradient of the whole step's mean. DDP exchanges gradients
    after the last batch only. Returns the local mean loss and the step's target positions.
    """
    items, tokens = t.splits["train"].items, t.codec.target.is_tokens
    n_step = sum(target_positions(items, idx, tokens) for idx in batches)
    total, n_mine = torch.zeros((), device=t.device), 0
    for j, idx in enumerate(batches):
        mine = t.world.shard(idx)
        n_local = target_positions(items, mine, tokens)
        # an empty shard (a small batch over many ranks) runs one item at weight 0: DDP's
        # gradient exchange needs every rank's backward
        batch = collate([items[i] for i in mine or idx[:1]], mine or idx[:1]).to(t.device)
        exchange = j == len(batches) - 1 or not hasattr(t.net, "no_sync")
        with contextlib.nullcontext() if exchange else t.net.no_sync():
            loss = forward_backward(t, batch, ratio, t.world.loss_scale(n_local, n_step), j == 0)
        total, n_mine = total + loss.detach() * n_local, n_mine + n_local
    return total / max(n_mine, 1), n_step


def target_positions(items: list[tuple[Tensor, ...]], idx: list[int], tokens: bool) -> int:
    """The target positions a batch of ``items[idx]`` has (``Batch.n_tokens``: EOS counts
    for tokens), known to every rank without an exchange."""
    return sum(len(items[i][1]) for i in idx) + (len(idx) if tokens else 0)


def forward_backward(
    t: Trainer, batch: Batch, ratio: float, scale: float = 1.0, first: bool = True
) -> Tensor:
    """The batch's loss (a 0-d tensor) with its gradients, times ``scale``, in ``.grad``
    (added to those there unless ``first``; through DDP, averaged over the ranks): a
    CUDA-graph replay where one is recorded and teacher forcing is full, else eager."""
    if t.graphs is not None and ratio == 1.0:
        return t.graphs(batch)
    if first:
        t.optimizer.zero_grad(set_to_none=t.graphs is None)  # graphs keep the .grad tensors
    loss = batch_loss(t.net, batch, t.cfg.train, t.kind, ratio, t.generator)
    (loss * scale).backward()
    return loss


def batch_loss(
    model: Seq2Seq,
    batch: Batch,
    tc: TrainConfig,
    kind: str,
    ratio: float = 1.0,
    generator: torch.Generator | None = None,
    capturing: bool = False,
) -> Tensor:
    """The training loss of one batch (the forward pass under ``tc.precision``) of ``model``
    (or its DistributedDataParallel); while a CUDA graph records (``capturing``) autocast
    keeps no cache of cast weights."""
    half = tc.precision == "bfloat16"
    device = batch.src.device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=half, cache_enabled=not capturing):
        args = (batch.src_mask, ratio, generator, batch.tgt_cov, batch.src_ext)
        out = model(batch.src, batch.tgt_in, *args)
    net = parallel.unwrap(model)
    vocab = net.head.out_features  # the target vocabulary, over which nll smooths
    return sequence_loss(out.float(), batch, kind, tc.label_smoothing, net.quantiles, vocab)


def checkpoint(t: Trainer) -> bool:
    """Rank 0 validates and saves; every rank learns whether to stop early."""
    return t.world.agree(validate_and_save(t) if t.world.lead else False)


def validate_and_save(t: Trainer) -> bool:
    """Validate, save ``last`` (and ``best`` if improved, and ``step-N`` if kept); True means
    stop early (``patience`` validations without improvement)."""
    tc, progress = t.cfg.train, t.progress
    result = {"step": progress.step}
    if "valid" in t.splits:
        result.update(validate(t.evaluated, t.codec, t.splits["valid"], t.cfg, t.kind, t.device))
    t.history.append(result)
    if t.curves is not None:
        t.curves.write("valid", progress.step, {k: v for k, v in result.items() if k != "step"})
    t.log(
        f"step {progress.step}: "
        + ", ".join(f"{k} {v:.4g}" for k, v in result.items() if k != "step")
    )
    best = (
        None
        if progress.best_score is None
        else {t.select: progress.best_score, "loss": progress.best_loss}
    )
    improved = t.select in result and is_better(t.select, result, best)
    if improved:
        progress.best_score, progress.best_loss = result[t.select], result.get("loss")
    progress.bad_evals = 0 if improved else progress.bad_evals + 1
    save_last(t, result)
    if improved or not (t.out_dir / "best").exists():
        save_checkpoint(t.out_dir / "best", t.cfg, t.evaluated, t.codec, None, result)
    if tc.keep_checkpoints:
        save_checkpoint(
            t.out_dir / f"step-{progress.step}", t.cfg, t.evaluated, t.codec, None, result
        )
        prune_step_checkpoints(t.out_dir, tc.keep_checkpoints)
    if tc.patience is not None and progress.bad_evals > tc.patience:
        t.log(f"early stop: no {t.select} improvement in {tc.patience} validations")
        return True
    return False


def save_last(t: Trainer, result: dict[str, float] | None) -> None:
    """``last``: the checkpoint with the trainer state, taken at a step boundary."""
    trainer = trainer_state(t)
    save_checkpoint(t.out_dir / "last", t.cfg, t.evaluated, t.codec, trainer, result)


def next_epoch(t: Trainer) -> bool:
    """Start the next epoch; True (after a last validation) when ``max_epochs`` are done."""
    t.progress.epoch, t.progress.batch_in_epoch = t.progress.epoch + 1, 0
    done = t.cfg.train.max_epochs is not None and t.progress.epoch >= t.cfg.train.max_epochs
    if done:
        checkpoint(t)
    return done


def interrupted(t: Trainer, signum: int) -> TrainResult:
    """Stopped by a signal: rank 0 saves ``last`` when at a step boundary (a second signal
    may land inside a step, whose state is not whole: ``last`` then stays as it was)."""
    if t.world.lead and not t.in_step:
        save_last(t, t.history[-1] if t.history else None)
        t.log(f"stopped at step {t.progress.step}: saved {t.out_dir / 'last'} (resume: --resume)")
    return dataclasses.replace(finished(t), interrupted=True, signum=signum)


def finished(t: Trainer) -> TrainResult:
    if t.curves is not None:
        t.curves.close()
    seconds = time.perf_counter() - t.started
    ranks = f", {t.world.size} processes" if t.world.size > 1 else ""
    t.log(
        f"trained {t.progress.step} steps in {seconds:.1f}s "
        f"({t.tokens / max(seconds, 1e-9):,.0f} target tokens/s{ranks})"
    )
    best = _best_metrics(t.history, t.select)
    return TrainResult(t.out_dir, t.progress.step, best, t.history, seconds)


def _best_metrics(history: list[dict[str, float]], select: str) -> dict[str, float]:
    best: dict[str, float] | None = None
    for h in history:
        if select in h and is_better(select, h, best):
            best = h
    return best or {}


def _bar_off(t: Trainer) -> bool | None:
    """tqdm's ``disable``: None shows the bar on a terminal only; rank 0 alone shows one."""
    return None if t.cfg.train.progress and t.world.lead else True


def show_progress(bar: tqdm, t: Trainer) -> None:
    bar.update(1)
    if t.progress.step % 10 == 0 and not bar.disable:
        lr = t.scheduler.get_last_lr()[0]
        bar.set_postfix(loss=f"{t.loss.item():.3f}", lr=f"{lr:.2e}", tf=f"{t.ratio:.2f}")


# --------------------------------------------------------------------------- validation


@torch.no_grad()
def validation_loss(model: Seq2Seq, split: Split, cfg: Config, kind: str, device) -> float:
    """Teacher-forced loss over the whole split, weighted by target positions."""
    model.eval()
    total, count = 0.0, 0
    for idx in batch_indices([len(item[1]) for item in split.items], cfg.decode.batch_size):
        batch = collate([split.items[i] for i in idx], idx).to(device)
        out = model(
            batch.src, batch.tgt_in, batch.src_mask, tgt_cov=batch.tgt_cov, src_ext=batch.src_ext
        )
        n = batch.n_tokens
        total += float(sequence_loss(out, batch, kind, quantiles=model.quantiles)) * n
        count += n
    return total / max(1, count)


def validate(
    model: Seq2Seq, codec: Codec, split: Split, cfg: Config, kind: str, device
) -> dict[str, float]:
    """Validation loss plus free-running decoding metrics on up to ``eval_max`` pairs."""
    result = {"loss": validation_loss(model, split, cfg, kind, device)}
    pairs = split.pairs if cfg.train.eval_max is None else split.pairs[: cfg.train.eval_max]
    period = cfg.forecast.period if cfg.forecast is not None else 1
    scores, _, _ = score(model, codec, pairs, cfg.decode, cfg.train.metrics, device, period)
    result.update(scores)
    model.train()
    return result


# --------------------------------------------------------------------------- setting up


def setup(
    cfg: Config,
    out_dir: Path,
    resume: bool,
    log: Callable[[str], None],
    world: World,
    data: Pairs | None = None,
) -> Trainer:
    """Data, codec, model, optimizer and schedule, fresh or from ``out_dir/last``."""
    cfg, device, codec, splits, model = build(cfg, out_dir, resume, world, data)
    tc = cfg.train
    t = Trainer(
        cfg=cfg,
        out_dir=out_dir,
        device=device,
        codec=codec,
        splits=splits,
        model=model,
        optimizer=make_optimizer(model, tc, device),
        world=world,
        log=log,
        kind=loss_kind(cfg, codec),
        select=selection(tc, codec),
        generator=torch.Generator().manual_seed(tc.seed),
    )
    t.ema = weight_average(model, tc.ema) if world.lead else None  # before resume swaps weights
    # the schedule reads the run's progress (a resume replaces it), so decay_horizon: minutes
    # follows the training time so far
    t.scheduler = LambdaLR(t.optimizer, lambda s: lr_factor(tc, s, t.progress.seconds / 60))
    if resume:
        t.progress = restore(load_trainer_state(out_dir / "last"), t)
        log(f"resuming {out_dir} at step {t.progress.step}")
    world.reseed(tc.seed, t.progress.step, t.generator)
    t.net = world.wrap(model)
    # CUDA graphs record one process's forward and backward; under DDP the backward holds
    # the gradient all-reduce, which they do not record here: DDP steps run eagerly
    # (and one batch's: with train.accumulate, eager too; and a copy model's, whose batches
    # carry the source's extended ids, which the recorded inputs do not hold)
    graphed = tc.cuda_graphs and not cfg.model.copy
    if device.type == "cuda" and graphed and world.size == 1 and tc.accumulate == 1:
        t.graphs = GraphedBackward(
            t.params, lambda b, capturing: batch_loss(model, b, tc, t.kind, capturing=capturing)
        )
    n_params, n_pairs = sum(p.numel() for p in model.parameters()), len(splits["train"].items)
    log(f"{cfg.model.family}: {n_params:,} parameters, {n_pairs:,} training pairs")
    if world.lead:
        t.curves = CurveWriter(out_dir, resumed_at=t.progress.step if resume else None)
    t.started, t.seconds_before = time.perf_counter(), t.progress.seconds
    t.interval = Interval(0.0, 0, 0, t.started)
    return t


def build(cfg: Config, out_dir: Path, resume: bool, world: World, data: Pairs | None = None):
    """The config (the saved model and data sections on resume), device, codec, encoded
    splits and model."""
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = world.device(pick_device(cfg.train.device))
    codec = None
    if resume:
        saved_cfg, model, codec = load_checkpoint(out_dir / "last")
        cfg = _resumed_config(saved_cfg, cfg)
    codec, splits = load_splits(cfg, codec, data)
    if not resume:
        cfg = with_data_sizes(cfg, codec, splits["train"].items)
        model = build_model(cfg.model, cfg.data.share_vocab)
    return cfg, device, codec, splits, model.to(device).train()


def load_splits(
    cfg: Config, codec: Codec | None, data: Pairs | None = None
) -> tuple[Codec, dict[str, Split]]:
    """The codec (fitted on the training data unless given) and the encoded splits: from
    ``data`` in memory, a prepared (memory-mapped) corpus, or the config's files."""
    if data is None and is_prepared(cfg.data.train):
        if cfg.model.copy:
            raise ConfigError("model.copy: needs the training text, not a prepared corpus")
        return prepared_splits(cfg.data, codec)
    raw = data if data is not None else read_splits(cfg.data, cfg.train.seed)
    codec = codec or fit_codec(cfg.data, raw["train"], cfg.model.copy)
    splits = {n: Split(p, codec.encode_pairs(p, f"{n} data")) for n, p in raw.items() if p}
    splits["train"] = filter_lengths(splits["train"], cfg.data)
    return codec, splits


def make_optimizer(model: Seq2Seq, tc: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    opt_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    fused = device.type == "cuda"  # one kernel for all parameters' update, not a few per tensor
    return opt_cls(
        model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay, fused=fused
    )


def _resumed_config(saved: Config, given: Config) -> Config:
    """Keep the saved model and data (they define the weights); take the training and
    decoding sections from the config given now, so a run can be extended (max_steps)."""
    return dataclasses.replace(saved, train=given.train, decode=given.decode)


def trainer_state(t: Trainer) -> dict[str, Any]:
    """Everything ``restore`` needs to continue exactly: progress, optimizer, schedule, RNGs
    and, with a weight average, the trained (not averaged) weights."""
    state = {
        **dataclasses.asdict(t.progress),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "sampling_rng": t.generator.get_state(),
        "python_rng": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    if t.ema is not None:  # the checkpoint's weights are the average; keep the trained ones here
        state["train_weights"] = {k: v.detach().cpu() for k, v in t.model.state_dict().items()}
        state["ema_updates"] = int(t.ema.n_averaged)
    return state


def restore(state: dict[str, Any], t: Trainer) -> Progress:
    """Put a saved trainer state back. ``t.model`` holds the checkpoint's weights (the
    average, when the run kept one), so an average restarts from them and the model from its
    own."""
    if t.ema is not None:
        t.ema.n_averaged.fill_(state.get("ema_updates", 0))
    if "train_weights" in state:
        t.model.load_state_dict(state["train_weights"])
    t.optimizer.load_state_dict(state["optimizer"])
    t.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    t.generator.set_state(state["sampling_rng"])
    random.setstate((3, tuple(state["python_rng"]), None))
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return Progress(
        **{f.name: state[f.name] for f in dataclasses.fields(Progress) if f.name in state}
    )
