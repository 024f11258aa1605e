"""The training loop: one plain function, ``train``, and its helpers.

Each step: batch -> forward (teacher forcing at the scheduled ratio) -> loss over real target
positions -> backward -> clip -> optimizer and learning-rate steps. Every ``eval_every`` steps:
validation loss and free-running decoding metrics, a ``last`` checkpoint (with the trainer state,
for ``resume``) and, when the selection metric improved, a ``best`` one. Ctrl-C saves ``last``
before it stops, so an interrupted run loses nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from hybridseq import parallel
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
from hybridseq.data import Batch, batch_indices, collate, pair_lengths
from hybridseq.model import Seq2Seq, build_model
from hybridseq.predict import score
from hybridseq.vocab import PAD_ID

LOWER_IS_BETTER = {"loss", "wer", "per", "mse", "mae", "mape", "smape"}
PERCENT_FLOOR = 1e-2  # least denominator of the mape / smape losses (scaled values are ~1)


@dataclass
class TrainResult:
    """What a finished (or interrupted) run leaves behind."""

    out_dir: Path
    step: int
    best: dict[str, float]  # validation metrics of the best checkpoint
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False


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


@functools.cache
def _levels(levels: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """The levels as a tensor, made once per device: a copy from the host cannot be recorded
    in a CUDA graph (``cudagraph``), and the first step is always eager."""
    return torch.tensor(levels, dtype=dtype, device=device)


def pinball_loss(pred: Tensor, target: Tensor, levels: Sequence[float]) -> Tensor:
    """The pinball (quantile) loss of Koenker & Bassett (1978), averaged over the levels:
    for level tau and error u = y - q, max(tau u, (tau - 1) u), whose expectation the tau
    quantile of y minimises. pred (..., Q), target (...) -> (...)."""
    tau = _levels(tuple(levels), pred.dtype, pred.device)  # (Q,)
    u = target.unsqueeze(-1) - pred  # (..., Q)
    return torch.maximum(tau * u, (tau - 1) * u).mean(-1)


def sequence_loss(
    out: Tensor,
    batch: Batch,
    kind: str,
    label_smoothing: float = 0.0,
    quantiles: Sequence[float] = (),
) -> Tensor:
    """Mean loss over real target positions (and variables, and quantile levels).

    Args:
        out: (B, T, V) logits, (B, T, D) vectors, or (B, T, D, Q) quantiles for ``quantile``.
        kind: ce | mse | mae | mape | smape | quantile. mape and smape are the forecasting
            metrics' relative errors (|e| / |y| and 2 |e| / (|y| + |y_hat|)), for a model
            scored by them; targets below PERCENT_FLOOR add nothing to mape (it is undefined
            at 0: a near-zero target would outweigh all others), and smape's denominator is
            floored there.
        quantiles: the Q levels of ``out`` (kind quantile).
    """
    if kind == "ce":
        return F.cross_entropy(
            out.reshape(-1, out.shape[-1]).float(),
            batch.tgt_out.reshape(-1),
            ignore_index=PAD_ID,
            label_smoothing=label_smoothing,
        )
    if kind == "quantile":
        err = pinball_loss(out.float(), batch.tgt_out, quantiles)  # (B, T, D)
    else:
        err = pointwise_error(out.float(), batch.tgt_out, kind)  # (B, T, D)
    mask = batch.tgt_mask.unsqueeze(-1).to(err.dtype)
    return (err * mask).sum() / (mask.sum() * err.shape[-1])


def pointwise_error(pred: Tensor, target: Tensor, kind: str) -> Tensor:
    """Per-element error of a vector prediction: (..., D), (..., D) -> (..., D)."""
    diff = pred - target
    if kind == "mse":
        return diff.pow(2)
    if kind == "mape":  # undefined at y = 0: targets below the floor are left out
        kept = target.abs() >= PERCENT_FLOOR
        return torch.where(kept, diff.abs() / target.abs().clamp(min=PERCENT_FLOOR), 0.0)
    if kind == "smape":  # denominator without gradient: else flat (= 2) wherever pred < 0 < y
        return 2 * diff.abs() / (target.abs() + pred.detach().abs()).clamp(min=PERCENT_FLOOR)
    return diff.abs()


def loss_kind(cfg: Config, codec: Codec) -> str:
    if cfg.train.loss != "auto":
        return cfg.train.loss
    if codec.target.is_tokens:
        return "ce"
    return "quantile" if cfg.model.quantiles else "mse"


def selection(cfg: TrainConfig, codec: Codec) -> str:
    """Which validation number picks the best checkpoint."""
    if cfg.select != "auto":
        return cfg.select
    if codec.target.is_tokens and cfg.metrics:
        return cfg.metrics[0]
    return "loss"


def is_better(name: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new < old if name in LOWER_IS_BETTER else new > old


@torch.no_grad()
def validation_loss(model: Seq2Seq, split: Split, cfg: Config, kind: str, device) -> float:
    """Teacher-forced loss over the whole split, weighted by target positions."""
    model.eval()
    total, count = 0.0, 0
    for idx in batch_indices([len(item[1]) for item in split.items], cfg.decode.batch_size):
        batch = collate([split.items[i] for i in idx], idx).to(device)
        out = model(batch.src, batch.tgt_in, batch.src_mask, tgt_cov=batch.tgt_cov)
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
    metrics, _, _ = score(model, codec, pairs, cfg.decode, cfg.train.metrics, device)
    result.update(metrics)
    model.train()
    return result


@dataclass
class Progress:
    """Where a run stands; saved with every ``last`` checkpoint so ``resume`` continues here."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    best_score: float | None = None
    bad_evals: int = 0  # validations since the selection metric last improved
    seconds: float = 0.0  # training time so far, over all resumed parts


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


def _trainer_state(
    progress: Progress, optimizer, scheduler, generator, model: Seq2Seq, ema: AveragedModel | None
) -> dict[str, Any]:
    state = {
        **dataclasses.asdict(progress),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "sampling_rng": generator.get_state(),
        "python_rng": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    if ema is not None:  # the checkpoint's weights are the average; keep the trained ones here
        state["train_weights"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        state["ema_updates"] = int(ema.n_averaged)
    return state


def _restore(
    state: dict[str, Any], optimizer, scheduler, generator, model: Seq2Seq, ema
) -> Progress:
    """Put a saved trainer state back. ``model`` holds the checkpoint's weights (the average,
    when the run kept one), so an average restarts from them and the model from its own."""
    if ema is not None:
        ema.n_averaged.fill_(state.get("ema_updates", 0))
    if "train_weights" in state:
        model.load_state_dict(state["train_weights"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    generator.set_state(state["sampling_rng"])
    random.setstate((3, tuple(state["python_rng"]), None))
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return Progress(
        **{f.name: state[f.name] for f in dataclasses.fields(Progress) if f.name in state}
    )


def setup(cfg: Config, out_dir: Path, resume: bool):
    """Data, codec, model and optimizer, fresh or from ``out_dir/last``."""
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    raw = read_splits(cfg.data, cfg.train.seed)
    if resume:
        saved_cfg, model, codec = load_checkpoint(out_dir / "last")
        cfg = _resumed_config(saved_cfg, cfg)
    else:
        codec = fit_codec(cfg.data, raw["train"])
    splits = {n: Split(p, codec.encode_pairs(p, f"{n} data")) for n, p in raw.items() if p}
    splits["train"] = filter_lengths(splits["train"], cfg.data)
    if not resume:
        cfg = with_data_sizes(cfg, codec, splits["train"].items)
        model = build_model(cfg.model)
    model = model.to(device).train()
    tc = cfg.train
    opt_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    fused = device.type == "cuda"  # one kernel for all parameters' update, not a few per tensor
    optimizer = opt_cls(
        model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay, fused=fused
    )
    return cfg, device, codec, splits, model, optimizer


def _resumed_config(saved: Config, given: Config) -> Config:
    """Keep the saved model and data (they define the weights); take the training and
    decoding sections from the config given now, so a run can be extended (max_steps)."""
    return Config(data=saved.data, model=saved.model, train=given.train, decode=given.decode)


def batch_loss(
    model, batch: Batch, tc: TrainConfig, kind: str, ratio: float = 1.0,
    generator: torch.Generator | None = None, capturing: bool = False,
) -> Tensor:  # fmt: skip
    """The training loss of one batch (the forward pass under ``tc.precision``); while a CUDA
    graph records (``capturing``) autocast keeps no cache of cast weights."""
    half = tc.precision == "bfloat16"
    device = batch.src.device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=half, cache_enabled=not capturing):
        out = model(batch.src, batch.tgt_in, batch.src_mask, ratio, generator, batch.tgt_cov)
    return sequence_loss(out.float(), batch, kind, tc.label_smoothing, model.quantiles)


def train_step(
    model,
    optimizer,
    scheduler,
    batch: Batch | None,
    tc: TrainConfig,
    kind: str,
    ratio: float,
    generator: torch.Generator,
    sync: Callable[[], None] | None = None,
    graphs: GraphedBackward | None = None,
) -> Tensor:
    """One optimisation step on one batch; returns the loss (a 0-d tensor).

    ``sync`` runs between backward and clipping (data-parallel gradient averaging); with it,
    ``batch`` may be None (this rank's shard of a small batch was empty). With ``graphs`` (on
    CUDA) the forward and backward are CUDA-graph replays where teacher forcing is full (the
    sampled inputs of scheduled sampling are drawn on the host)."""
    if graphs is not None and batch is not None and ratio == 1.0:
        loss = graphs(batch)
    else:
        optimizer.zero_grad(set_to_none=graphs is None)  # graphs keep the .grad tensors
        loss = torch.zeros(())
        if batch is not None:
            loss = batch_loss(model, batch, tc, kind, ratio, generator)
            loss.backward()
    if sync is not None:
        sync()
    if tc.clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
    optimizer.step()
    scheduler.step()
    return loss


def train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train a model; checkpoints go to ``out_dir/last`` and ``out_dir/best``.

    With ``train.processes`` > 1, that many data-parallel worker processes train it
    (``hybridseq.parallel``); the result is the same run's, split across them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.train.processes > 1:
        parallel.check(cfg, pick_device(cfg.train.device))
        return parallel.launch(cfg, out_dir, resume, log)
    return run(cfg, out_dir, resume, log)


def run(
    cfg: Config,
    out_dir: Path,
    resume: bool,
    log: Callable[[str], None],
    group: parallel.Group | None = None,
) -> TrainResult:
    """The loop behind ``train``, in one process; ``group`` is its data-parallel rank, if any
    (then rank 0 alone validates and writes checkpoints)."""
    lead = group is None or group.lead
    cfg, device, codec, splits, model, optimizer = setup(cfg, out_dir, resume)
    tc = cfg.train
    kind, select = loss_kind(cfg, codec), selection(tc, codec)
    generator = torch.Generator().manual_seed(tc.seed)
    progress = Progress()
    ema = weight_average(model, tc.ema) if lead else None  # before a resume swaps weights in
    evaluated = model if ema is None else ema.module  # what validation sees and checkpoints hold
    # the schedule reads the run's progress (a resume rebinds it), so decay_horizon: minutes
    # follows the training time so far
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(tc, s, progress.seconds / 60)
    )
    if resume:
        state = load_trainer_state(out_dir / "last")
        progress = _restore(state, optimizer, scheduler, generator, model, ema)
        log(f"resuming {out_dir} at step {progress.step}")
    if group is not None:
        group.reseed(tc.seed, progress.step, generator)
    items, valid = splits["train"].items, splits.get("valid")
    lengths = pair_lengths(items)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{cfg.model.family}: {n_params:,} parameters, {len(items):,} training pairs")
    history: list[dict[str, float]] = []
    show = tc.progress and lead
    bar = tqdm(total=tc.max_steps, initial=progress.step, disable=None if show else True)
    start, tokens, interrupted = time.perf_counter(), 0, False
    seconds_before = progress.seconds
    params = [p for p in model.parameters() if p.requires_grad]
    graphs = None
    if device.type == "cuda" and tc.cuda_graphs:
        graphs = GraphedBackward(
            params, lambda b, capturing: batch_loss(model, b, tc, kind, capturing=capturing)
        )

    def save_last(metrics: dict[str, float] | None) -> None:
        trainer = _trainer_state(progress, optimizer, scheduler, generator, model, ema)
        save_checkpoint(out_dir / "last", cfg, evaluated, codec, trainer, metrics)

    def validate_and_save() -> bool:
        """Validate, save ``last`` (and ``best`` if improved); True means stop early."""
        metrics = {"step": progress.step}
        metrics.update(validate(evaluated, codec, valid, cfg, kind, device) if valid else {})
        history.append(metrics)
        log(
            f"step {progress.step}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "step")
        )
        value = metrics.get(select)
        improved = value is not None and is_better(select, value, progress.best_score)
        progress.best_score = value if improved else progress.best_score
        progress.bad_evals = 0 if improved else progress.bad_evals + 1
        save_last(metrics)
        if improved or not (out_dir / "best").exists():
            save_checkpoint(out_dir / "best", cfg, evaluated, codec, None, metrics)
        if tc.keep_checkpoints:
            save_checkpoint(out_dir / f"step-{progress.step}", cfg, evaluated, codec, None, metrics)
            prune_step_checkpoints(out_dir, tc.keep_checkpoints)
        if tc.patience is not None and progress.bad_evals > tc.patience:
            log(f"early stop: no {select} improvement in {tc.patience} validations")
            return True
        return False

    def checkpoint() -> bool:
        """Rank 0 validates and saves; every rank learns whether to stop early."""
        stop = validate_and_save() if lead else False
        return stop if group is None else group.agree(stop)

    def time_up() -> bool:
        return tc.max_minutes is not None and progress.seconds / 60 > tc.max_minutes

    # this step's target positions (here, then in the whole batch) and rank 0's stop requests
    step = {"n_local": 0, "n_batch": 0, "time_up": False, "interrupt": False}

    def sync() -> None:
        """Data-parallel: the batch-wide gradient, and rank 0's clock and stop requests."""
        step["n_batch"], progress.seconds, step["time_up"], step["interrupt"] = group.sync_grads(
            params, step["n_local"], progress.seconds, time_up()
        )

    try:
        done = False
        if tc.validate_first and not resume:
            done = checkpoint()
        while not done:
            order = batch_indices(
                lengths,
                tc.batch_size,
                bucket=tc.bucket,
                shuffle=True,
                seed=tc.seed + progress.epoch,
            )
            for idx in order[progress.batch_in_epoch :]:
                mine = idx if group is None else group.shard(idx)
                batch = collate([items[i] for i in mine], mine) if mine else None
                step["n_local"] = step["n_batch"] = batch.n_tokens if batch is not None else 0
                batch = batch.to(device) if batch is not None else None
                ratio = teacher_forcing_ratio(tc, progress.step)
                loss = train_step(
                    model, optimizer, scheduler, batch, tc, kind, ratio, generator,
                    sync if group is not None else None, graphs,
                )  # fmt: skip
                if ema is not None:
                    ema.update_parameters(model)
                progress.step += 1
                progress.batch_in_epoch += 1
                tokens += step["n_batch"]
                bar.update(1)
                if progress.step % 10 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}", tf=f"{ratio:.2f}")
                if lead:
                    progress.seconds = seconds_before + time.perf_counter() - start
                if step["interrupt"]:
                    raise KeyboardInterrupt
                timed_out = step["time_up"] if group is not None else time_up()
                done = progress.step >= tc.max_steps or timed_out
                if progress.step % tc.eval_every == 0 or done:
                    done = checkpoint() or done
                if done:
                    break
            else:
                progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
                done = tc.max_epochs is not None and progress.epoch >= tc.max_epochs
                if done and lead:
                    validate_and_save()
    except KeyboardInterrupt:
        interrupted = True
        if lead:
            log(f"interrupted at step {progress.step}: saved {out_dir / 'last'} (resume: --resume)")
            save_last(history[-1] if history else None)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    log(
        f"trained {progress.step} steps in {seconds:.1f}s "
        f"({tokens / max(seconds, 1e-9):,.0f} target tokens/s"
        + (f", {tc.processes} processes)" if group is not None else ")")
    )
    result_best = _best_metrics(history, select)
    return TrainResult(out_dir, progress.step, result_best, history, seconds, interrupted)


def _best_metrics(history: list[dict[str, float]], select: str) -> dict[str, float]:
    best: dict[str, float] = {}
    for h in history:
        if select in h and (not best or is_better(select, h[select], best[select])):
            best = h
    return best
