"""The Python API. The command line (``hybridseq.cli``) is a thin layer over these functions.

import hybridseq
result = hybridseq.train("demo", out="runs/demo")  # a shipped config, or a YAML path
model = hybridseq.load("runs/demo")           # best checkpoint
model.predict(["a b c"])                       # -> ["c b a"]
model.evaluate("test.tsv", metrics=["exact_match"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from hybridseq import shipped, synthetic
from hybridseq.checkpoint import (
    CheckpointError,
    average_checkpoints,
    load_checkpoint,
    step_checkpoints,
)
from hybridseq.codec import Codec
from hybridseq.config import Config, ConfigError, apply_overrides, config_from_dict, load_config
from hybridseq.corpus import fit_codec, parse_paths, read_splits, with_data_sizes
from hybridseq.data import DataError, read_pairs
from hybridseq.ensemble import Ensemble
from hybridseq.model import Seq2Seq, build_model
from hybridseq.predict import predict as _predict
from hybridseq.predict import score
from hybridseq.training import TrainResult, pick_device
from hybridseq.training import train as _train


def as_config(config: str | Path | dict | Config, overrides: Sequence[str] = ()) -> Config:
    """A Config from a YAML path (or the name of a shipped config, ``hybridseq.shipped``,
    where no such file exists), a plain dict or a Config, with ``key=value`` overrides."""
    if isinstance(config, Config):
        return config_from_dict(apply_overrides(config.to_dict(), list(overrides)))
    if isinstance(config, dict):
        return config_from_dict(apply_overrides(config, list(overrides)))
    return load_config(shipped.resolve(config), list(overrides))


def train(
    config: str | Path | dict | Config,
    out: str | Path = "runs/latest",
    overrides: Sequence[str] = (),
    resume: bool = False,
    log=print,
    data: dict[str, list] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train from a config; checkpoints are written to ``out/last`` and ``out/best``.
    ``data`` gives the splits' pairs in memory instead of the config's files. An ``out``
    that holds a run needs ``resume`` (continue it) or ``overwrite`` (replace it)."""
    cfg = as_config(config, overrides)
    return _train(cfg, out, resume=resume, log=log, data=data, overwrite=overwrite)


@dataclass
class Model:
    """A trained model with its config and codec: everything needed to predict and evaluate."""

    config: Config
    network: Seq2Seq | Ensemble
    codec: Codec
    device: torch.device

    def decode_config(self, beam: int | None = None, steps: int | None = None):
        d = self.config.decode
        if beam is not None:
            d = replace(d, beam=beam)
        if steps is not None:
            d = replace(d, steps=steps)
        return d

    def predict(
        self,
        sources: Sequence[Any],
        beam: int | None = None,
        steps: int | None = None,
        covariates: Sequence[Any] | None = None,
        n_best: int = 1,
        attention: bool = False,
    ) -> list[Any]:
        """Sources (text, or (S, D) arrays) -> outputs (text, or (T, D) arrays; (T, D, Q) for
        a model with Q quantiles). A model trained with covariates needs ``covariates``: per
        source a (T, C) array of the values known at its T output steps (T replaces
        ``steps``).

        A token model with ``n_best`` > 1 (at most ``beam``) or ``attention`` gives per source
        its n best ``Prediction``s instead: text, score and, with ``attention``, an
        ``Alignment`` (source symbols, output symbols, weights (T_out, S_src))."""
        if covariates is not None and steps is not None:
            raise ValueError("give steps or covariates (their length is the steps), not both")
        dcfg = self.decode_config(beam, steps)
        return _predict(
            self.network,
            self.codec,
            list(sources),
            dcfg,
            self.device,
            covariates,
            n_best=n_best,
            attention=attention,
        )

    def evaluate(
        self,
        data: str | Path | Sequence[tuple[Any, Any]],
        metrics: Sequence[str] | None = None,
        beam: int | None = None,
    ) -> dict[str, float]:
        """Metrics of the model's predictions on a data file or a list of pairs (a source that
        appears several times counts once, with all its targets as references)."""
        pairs = read_pairs(parse_paths(str(data))) if isinstance(data, (str, Path)) else list(data)
        names = list(metrics or self.config.train.metrics)
        result, _, _ = score(
            self.network, self.codec, pairs, self.decode_config(beam), names, self.device
        )
        return result


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def precision(name: str) -> torch.dtype:
    """The torch dtype of a ``PRECISIONS`` name; a ValueError listing them for any other."""
    if name not in PRECISIONS:
        raise ValueError(f"dtype {name!r}: expected one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def load(
    path: str | Path | Sequence[str | Path], device: str = "auto", dtype: str = "float32"
) -> Model:
    """Load a checkpoint directory (or a training output directory: its ``best``). Several
    paths load an ensemble that decodes as one model (mean of the members' probabilities, or
    of their vectors); they must share one codec, and the first one's config is kept.

    ``dtype`` ``bfloat16`` or ``float16`` converts the decoder side's weights once and runs
    the decoding steps in that precision (the encoder stays in float32; beam scores are summed
    in float32). Each step reads every decoder weight, so at batch 1 on a CPU half the bytes is
    most of the time saved; at large batches a CPU without half-precision matrix units is
    slower in it (BENCHMARKS.md).
    """
    dev, half = pick_device(device), precision(dtype)
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    loaded = [load_checkpoint(p, dev) for p in paths]
    cfg, net, codec = loaded[0]
    if len(loaded) == 1:
        return Model(cfg, net.decode_in(half), codec, dev)
    for p, (_, _, other) in zip(paths[1:], loaded[1:], strict=True):
        if other.to_dict() != codec.to_dict():
            raise ValueError(
                f"ensemble: {p} encodes its data differently from {paths[0]} "
                "(another vocabulary or vector width); members must share one codec"
            )
    return Model(cfg, Ensemble([n for _, n, _ in loaded]).decode_in(half), codec, dev)


def average(
    paths: Sequence[str | Path], out: str | Path, last: int | None = None
) -> tuple[Path, list[Path]]:
    """Average the weights of checkpoints of one training run into the checkpoint ``out``
    (checkpoint averaging). Each path is a checkpoint, or with ``last`` a run directory
    whose newest ``last`` kept ``step-<N>`` checkpoints are taken (``train.keep_checkpoints``).
    Returns ``out`` and the checkpoints averaged."""
    if last is not None and last < 1:
        raise ValueError(f"average: last={last}: must be >= 1")
    chosen: list[Path] = []
    for p in map(Path, paths):
        if last is None:
            chosen.append(p)
            continue
        kept = step_checkpoints(p)
        if not kept:
            raise CheckpointError(
                f"average: {p} has no step-<N> checkpoints; train with "
                "train.keep_checkpoints: N to keep them"
            )
        chosen += kept[-last:]
    return average_checkpoints(chosen, out), chosen


def synth(
    task: str, n: int, out: str | Path | None = None, seed: int = 0, **kwargs: Any
) -> list[tuple[Any, Any]]:
    """Generate ``n`` pairs of a synthetic task; write them (TSV or JSONL) when ``out`` is given."""
    if task in synthetic.VECTOR_TASKS:
        pairs = synthetic.make_vector_pairs(task, n, seed=seed, **kwargs)
        if out is not None:
            synthetic.write_jsonl(pairs, out)
        return pairs
    pairs = synthetic.make_token_pairs(task, n, seed=seed, **kwargs)
    if out is not None:
        synthetic.write_tsv(pairs, out)
    return pairs


def _sizes_for_summary(cfg: Config) -> tuple[Config, list[str], str]:
    """The config with the sizes that the data decide (vocabularies, vector widths) taken from
    its data, read and fitted as training does. Where there is none to read (a forecasting
    config, whose series come with ``forecast train``; no data section; files that cannot be
    read) they are placeholders. Returns the config, the placeholders' names and where the
    sizes came from."""
    m, d = cfg.model, cfg.data
    if (m.src_vocab or m.src_dim) and (m.tgt_vocab or m.tgt_dim):
        return cfg, [], "the config"
    if cfg.forecast is not None:
        return _forecast_placeholders(cfg)
    if d.train is None and d.synth is None:
        return (*_placeholders(cfg), "placeholders: the config names no data")
    try:
        train = read_splits(d, cfg.train.seed)["train"]
        codec = fit_codec(d, train)
    except (ConfigError, DataError, OSError, ValueError) as e:
        return (*_placeholders(cfg), f"placeholders: the data could not be read ({e})")
    where = f"data.train {d.train}" if d.train else f"data.synth ({d.synth.task})"
    return with_data_sizes(cfg, codec, train), [], where


def _placeholders(cfg: Config) -> tuple[Config, list[str]]:
    """1000-token vocabularies (the seed's) for the sizes neither the config nor data set."""
    m, filled = cfg.model, []
    if m.src_vocab is None and m.src_dim is None:
        m, filled = replace(m, src_vocab=1000), filled + ["src_vocab"]
    if m.tgt_vocab is None and m.tgt_dim is None:
        m, filled = replace(m, tgt_vocab=1000), filled + ["tgt_vocab"]
    return replace(cfg, model=m), filled


def _forecast_placeholders(cfg: Config) -> tuple[Config, list[str], str]:
    """A forecasting model's widths for one variable without user covariates: the source is
    the value and the calendar's sin and cos (with ``forecast.calendar``), the target the
    value."""
    m, calendar = cfg.model, 2 if cfg.forecast.calendar else 0
    filled = [k for k in ("src_dim", "tgt_dim") if getattr(m, k) is None]
    m = replace(m, src_dim=m.src_dim or 1 + calendar, tgt_dim=m.tgt_dim or 1)
    if calendar and m.tgt_cov_dim is None:
        m = replace(m, tgt_cov_dim=calendar)
    return replace(cfg, model=m), filled, "placeholders: one variable (the series decide)"


def summary(config: str | Path | dict | Config, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Per-component parameter counts and shapes of a model: the trained one of a run or
    checkpoint directory, or the one a config (file, shipped name, dict or Config) builds with
    the vocabularies and widths its data give (``sizes_from`` says where they came from)."""
    if isinstance(config, (str, Path)) and Path(config).is_dir():
        if overrides:
            raise ValueError(f"summary: {config} is a trained run; --set is for configs")
        trained = load(config, device="cpu")
        return _described(trained.config, trained.network, [], f"the checkpoint in {config}")
    cfg, filled, where = _sizes_for_summary(as_config(config, overrides))
    return _described(cfg, build_model(cfg.model, cfg.data.share_vocab), filled, where)


def _described(cfg: Config, model: torch.nn.Module, filled: list[str], where: str) -> dict:
    components = {}
    for name, module in model.named_children():
        params = {n: list(p.shape) for n, p in module.named_parameters()}
        count = sum(p.numel() for p in module.parameters())
        if count:
            components[name] = {"parameters": count, "shapes": params}
    total = sum(p.numel() for p in model.parameters())
    m = cfg.model
    return {
        "family": m.family,
        "source": f"vocab {m.src_vocab}" if m.src_vocab else f"vectors of {m.src_dim}",
        "target": f"vocab {m.tgt_vocab}" if m.tgt_vocab else f"vectors of {m.tgt_dim}",
        "sizes_from": where,
        "placeholders": filled,
        "attention": m.attention,
        "decoder_init": m.resolved_init,
        "parameters": total,
        "components": components,
    }


DEMO_CONFIG: dict[str, Any] = {
    "data": {
        "synth": {
            "task": "reverse",
            "n_train": 20000,
            "n_valid": 300,
            "n_test": 1000,
            "min_len": 5,
            "max_len": 20,
            "vocab": 20,
        },
    },
    "model": {
        "family": "hybrid",
        "d_model": 128,
        "heads": 4,
        "ff_dim": 256,
        "enc_layers": 2,
        "emb_dim": 64,
        "dec_hidden": 128,
        "dec_layers": 1,
        "attention": "additive",
        "dropout": 0.1,
    },
    "train": {
        "batch_size": 64,
        "max_steps": 1500,
        "lr": 0.002,
        "warmup_steps": 100,
        "decay": "cosine",
        "min_lr_ratio": 0.05,
        "eval_every": 500,
        "eval_max": 300,
        "threads": None,
    },
}


def demo(out: str | Path = "runs/demo", overrides: Sequence[str] = (), log=print) -> dict:
    """The built-in default: train the hybrid on reversing sequences of 5-20 symbols, then
    decode 1,000 held-out sequences (none seen in training) and report their accuracy."""
    cfg = as_config(DEMO_CONFIG, overrides)
    result = train(cfg, out, log=log, overwrite=True)  # the demo's directory is its own
    model = load(Path(out) / "best")
    test = read_splits(cfg.data, cfg.train.seed)["test"]
    metrics = model.evaluate(test, metrics=["exact_match", "token_accuracy"])
    shown = test[:5]
    predicted = model.predict([s for s, _ in shown])
    examples = [
        {"source": s, "target": t, "predicted": p}
        for (s, t), p in zip(shown, predicted, strict=True)
    ]
    return {
        "task": "reverse, lengths 5-20, 20 symbols",
        "held_out": len(test),
        "train_seconds": round(result.seconds, 1),
        "steps": result.step,
        **metrics,
        "examples": examples,
    }
