"""Typed configuration: YAML in, dataclasses out, unknown keys and wrong types refused by name.

A config has four sections, each a dataclass below: ``data``, ``model``, ``train`` and
``decode``, and a fifth, ``forecast``, for a model trained on windows of series.
Every field is documented where it is declared. ``load_config`` reads YAML, ``apply_overrides``
takes ``section.key=value`` strings from the command line, and both fail with a ``ConfigError``
naming the offending key (and the closest valid key when it looks like a typo).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hybridseq import baselines, metrics, synthetic


class ConfigError(ValueError):
    """A user mistake in a config: unknown key, wrong type or an inconsistent combination."""


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(valid)}")


def _at_least(section: str, obj: Any, names: tuple[str, ...], least: int) -> None:
    """Refuse a field of ``obj`` below ``least``; None (unset) passes."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < least:
            raise ConfigError(f"{section}.{name}: {value} is not allowed; must be >= {least}")


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as people write them: PyYAML follows YAML 1.1,
    where ``1e-3`` (no dot) is a string; here it is the float it looks like, as in YAML 1.2."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """YAML text to plain values, safely (no objects built), ``1e-3`` read as a number."""
    return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader: builds no objects


@dataclass
class SynthConfig:
    """A built-in synthetic task used when no data files are given."""

    task: str = "reverse"  # copy | copy_rare | reverse | sort | add; sines | ar (vectors)
    n_train: int = 5000
    n_valid: int = 500
    n_test: int = 500
    min_len: int = 5  # token tasks: sequence length range (add: digits per operand)
    max_len: int = 20
    vocab: int = 20  # token tasks: number of distinct symbols
    src_len: int = 24  # vector tasks: past length
    tgt_len: int = 8  # vector tasks: future length
    dim: int = 1  # vector tasks: width of each vector
    noise: float = 0.1  # vector tasks: noise std
    seed: int = 1234  # data seed (independent of the training seed)


@dataclass
class DataConfig:
    """Where the sequence pairs come from and how text becomes tokens."""

    train: str | None = None  # .tsv, .jsonl (vectors) or "src_file,tgt_file" (parallel text)
    valid: str | None = None
    test: str | None = None
    synth: SynthConfig | None = None  # used when `train` is not given
    src_tokenize: str = "whitespace"  # whitespace | char | subword
    tgt_tokenize: str = "whitespace"
    subword_vocab: int = 8000  # BPE vocabulary size when a side uses `subword`
    max_vocab: int | None = None  # cap on each vocabulary (specials included)
    min_freq: int = 1  # drop rarer tokens from the vocabulary (they become <unk>)
    max_src_len: int | None = None  # drop training pairs longer than this (None: keep all)
    max_tgt_len: int | None = None
    # the longest source or target (tokens, or vectors) a data file may hold: a longer one is
    # an error when the files are read, naming file:line, not a crash at some later step (the
    # hybrid's positional encoding ends at model.max_positions, also 4096 by default)
    max_len: int = 4096
    # one vocabulary (and tokenizer) fitted on the source and target texts together, so a
    # token has the same id on both sides; needs src_tokenize == tgt_tokenize. min_freq and
    # max_vocab then count both sides
    share_vocab: bool = False

    def __post_init__(self) -> None:
        for name in ("src_tokenize", "tgt_tokenize"):
            _choice(f"data.{name}", getattr(self, name), ("char", "whitespace", "subword"))
        if self.share_vocab and self.src_tokenize != self.tgt_tokenize:
            raise ConfigError(
                f"data.share_vocab: needs src_tokenize == tgt_tokenize "
                f"(got {self.src_tokenize!r} and {self.tgt_tokenize!r})"
            )
        if self.min_freq < 1:
            raise ConfigError("data.min_freq: must be >= 1")
        sizes = ("subword_vocab", "max_vocab", "max_src_len", "max_tgt_len", "max_len")
        _at_least("data", self, sizes, 1)


# sizes that must be positive (None: filled from the data)
MODEL_SIZES = (
    "emb_dim",
    "enc_hidden",
    "enc_layers",
    "d_model",
    "heads",
    "ff_dim",
    "max_positions",
    "dec_hidden",
    "dec_layers",
    "attn_heads",
    "src_vocab",
    "tgt_vocab",
    "src_dim",
    "tgt_dim",
    "tgt_cov_dim",
)


@dataclass
class ModelConfig:
    """The network. Sizes that the data decides (vocabularies, vector widths) are filled in by
    the builder and stored in the checkpoint's config."""

    family: str = "hybrid"  # lstm_attention (seed 002) | hybrid (seed 000)
    # encoder, lstm_attention family
    emb_dim: int = 256  # token embedding size (encoder and decoder)
    enc_hidden: int = 512  # LSTM encoder hidden size per direction
    enc_layers: int = 2  # LSTM layers, or Transformer layers for the hybrid
    bidirectional: bool = False
    # encoder, hybrid family
    d_model: int = 512
    heads: int = 8
    ff_dim: int = 2048
    max_positions: int = 4096  # longest source the positional encoding precomputes
    # sinusoidal (Vaswani et al. 2017) | learned: one trained vector per position up to
    # max_positions, starting as the sinusoids (set max_positions near the longest source) |
    # relative: no position vector; a learned bias per head and offset (clipped at +-16) on
    # every layer's attention scores
    positions: str = "sinusoidal"
    # true: the source embedding starts N(0, 1/width) and is multiplied by sqrt(width)
    # (Vaswani et al. 2017, §3.4) instead of starting N(0, 1) unscaled
    embed_scale: bool = False
    # pre-norm layers (LayerNorm before attention and feed-forward, one more after the last
    # layer; Xiong et al. 2020) instead of the seed's post-norm: steadier at higher learning rates
    norm_first: bool = False
    # decoder (both families)
    dec_hidden: int = 512
    dec_layers: int = 2
    attention: str = "additive"  # additive (Bahdanau) | multihead | none
    attn_heads: int = 4  # heads for attention = multihead
    # true (seed 002, Bahdanau): the context attended from the previous state joins the decoder
    # LSTM's input. false (Luong et al. 2015 without input feeding): the LSTM reads only the
    # previous target and its new output queries the attention; teacher-forced training then
    # runs the decoder LSTM and the attention over all steps at once instead of step by step
    input_feed: bool = True
    decoder_init: str = "auto"  # auto | final | bridge | last | zeros (see below)
    dropout: float = 0.1
    # vector targets: predict these quantile levels (strictly increasing, in (0, 1)) instead of
    # one value per variable; the level closest to 0.5 is the point forecast (see Seq2Seq.point)
    quantiles: list[float] | None = None
    # vector targets: the output layer starts as this constant (zero weights, bias = value):
    # 1.0 where the data is scaled so that a flat 1 is a baseline forecast (the forecaster's
    # window_season with scale window_last: seasonal naive), so training starts from it
    head_init: float | None = None
    # token targets: copy attention, a pointer-generator (See et al. 2017): each step mixes the
    # output layer's distribution with the attention weights over the source tokens, by a
    # learned gate, over the target vocabulary extended by the source's own unknown tokens,
    # so the model can emit a source symbol it never saw as a target (or that is <unk> in the
    # source vocabulary). Needs attention (additive or multihead: the heads' average)
    copy: bool = False
    # token targets: the output layer's weight is the target embedding's (Press & Wolf 2017);
    # where dec_hidden + context width != emb_dim a linear projection to emb_dim comes first.
    # With data.share_vocab the source embedding is that same matrix too (the hybrid family
    # then needs emb_dim == d_model)
    tie_embeddings: bool = False
    # filled from the data when left at None
    src_vocab: int | None = None
    tgt_vocab: int | None = None
    src_dim: int | None = None  # vector width of the source (vectors only)
    tgt_dim: int | None = None  # vector width of the target (vectors only)
    tgt_cov_dim: int | None = None  # width C of the covariates known at each target step

    def __post_init__(self) -> None:
        _choice("model.family", self.family, ("lstm_attention", "hybrid"))
        _choice("model.attention", self.attention, ("additive", "multihead", "none"))
        inits = ("auto", "final", "bridge", "last", "zeros")
        _choice("model.decoder_init", self.decoder_init, inits)
        _choice("model.positions", self.positions, ("sinusoidal", "learned", "relative"))
        _at_least("model", self, MODEL_SIZES, 1)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout: {self.dropout} is not in [0, 1)")
        if self.family == "hybrid" and self.d_model % self.heads:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.heads ({self.heads})"
            )
        if self.attention == "multihead" and self.dec_hidden % self.attn_heads:
            raise ConfigError(
                f"model.dec_hidden ({self.dec_hidden}) must be divisible by "
                f"model.attn_heads ({self.attn_heads})"
            )
        self._check_quantiles()
        self._check_head_init()
        self._check_tokens_only()
        init = self.resolved_init
        if init == "final":
            if self.family != "lstm_attention":
                raise ConfigError("model.decoder_init: 'final' needs family lstm_attention")
            if self.bidirectional or self.enc_layers != self.dec_layers:
                raise ConfigError(
                    "model.decoder_init: 'final' copies the encoder's final states, so it needs "
                    "a unidirectional encoder with enc_layers == dec_layers; use 'bridge'"
                )
            if self.enc_hidden != self.dec_hidden:
                raise ConfigError("model.decoder_init: 'final' needs enc_hidden == dec_hidden")
        if init == "last" and self.memory_dim != self.dec_hidden:
            raise ConfigError(
                f"model.decoder_init: 'last' needs the memory width ({self.memory_dim}) "
                f"to equal dec_hidden ({self.dec_hidden})"
            )

    def _check_quantiles(self) -> None:
        q = self.quantiles
        if q is None:
            return
        increasing = all(a < b for a, b in zip(q, q[1:], strict=False))
        if not q or not increasing or any(not 0.0 < x < 1.0 for x in q):
            raise ConfigError(f"model.quantiles: {q} is not a strictly increasing list in (0, 1)")
        if self.tgt_vocab is not None:
            raise ConfigError("model.quantiles: only for a vector target (this one is tokens)")

    def _check_head_init(self) -> None:
        if self.head_init is None:
            return
        if self.tgt_vocab is not None:
            raise ConfigError("model.head_init: only for a vector target (this one is tokens)")
        if self.quantiles:
            raise ConfigError("model.head_init: not with model.quantiles (one value per level)")

    def _check_tokens_only(self) -> None:
        """copy and tie_embeddings are for token targets (copy also for token sources)."""
        if self.copy and self.attention == "none":
            raise ConfigError("model.copy: copies by the attention weights; set model.attention")
        if self.copy and (self.tgt_dim is not None or self.src_dim is not None):
            raise ConfigError("model.copy: only for token sources and targets")
        if self.tie_embeddings and self.tgt_dim is not None:
            raise ConfigError("model.tie_embeddings: only for a token target")

    @property
    def resolved_init(self) -> str:
        """How the decoder's initial (h, c) is made. auto: the seed's choice where it is
        well-defined ('final' for a unidirectional LSTM encoder of matching shape), else a
        learned 'bridge' from the masked mean of the encoder memory."""
        if self.decoder_init != "auto":
            return self.decoder_init
        if (
            self.family == "lstm_attention"
            and not self.bidirectional
            and self.enc_layers == self.dec_layers
            and self.enc_hidden == self.dec_hidden
        ):
            return "final"
        return "bridge"

    @property
    def memory_dim(self) -> int:
        """Width of the encoder outputs the decoder attends over."""
        if self.family == "hybrid":
            return self.d_model
        return self.enc_hidden * (2 if self.bidirectional else 1)


@dataclass
class TrainConfig:
    """Optimisation, schedules, validation and stopping."""

    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch CPU threads per process (None: torch's default)
    # data-parallel processes on CPU (gloo): each trains on 1/N of every batch and their
    # gradients are summed, so a step is the whole batch's; threads then count per process
    processes: int = 1
    batch_size: int = 64  # sentences per batch (at most, with batch_tokens)
    # at most this many source + target positions per batch, padding included (n x the
    # longest source + target), as fairseq's --max-tokens; None: batches of batch_size
    batch_tokens: int | None = None
    accumulate: int = 1  # batches per optimizer step (gradient accumulation), exact under DDP
    max_steps: int = 2000
    max_epochs: int | None = None
    max_minutes: float | None = None  # stop (validate, save) once training has run this long
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0  # linear warm-up from 0
    decay: str = "none"  # none | linear | cosine | inverse_sqrt (after warm-up)
    min_lr_ratio: float = 0.0  # floor of linear/cosine decay, as a fraction of lr
    decay_horizon: str = "steps"  # steps: decay over max_steps | minutes: over max_minutes
    clip: float = 1.0  # gradient norm clipping (0: off)
    # bfloat16: forward pass under autocast (matrix products in bf16, weights, gradients,
    # optimizer and loss in float32); for GPUs with bf16 units: a CPU without them is slower
    precision: str = "float32"  # float32 | bfloat16
    # on CUDA: record each batch shape's forward and backward once as a CUDA graph and replay
    # it (lengths padded to multiples of 8; steps with scheduled sampling stay eager)
    cuda_graphs: bool = True
    # exponential moving average of the weights (0: off; e.g. 0.999): validation, `best` and
    # `last` use the averaged weights; the decay ramps in as min(ema, (1 + n) / (10 + n))
    ema: float = 0.0
    # auto: ce for tokens, mse for vectors, quantile (pinball) with model.quantiles
    loss: str = "auto"  # auto | ce | mse | mae | mape | smape (relative errors) | quantile
    label_smoothing: float = 0.0
    teacher_forcing: float = 1.0  # probability of feeding the gold previous token (at the start)
    sampling_schedule: str = "constant"  # constant | linear | exponential | inverse_sigmoid
    sampling_k: float = 1000.0  # decay speed: steps for linear, rate base for the others
    min_teacher_forcing: float = 0.0  # floor of the decayed teacher-forcing ratio
    bucket: bool = True  # batch similar lengths together
    eval_every: int = 200  # validate every N steps (and at the end)
    eval_max: int | None = 1000  # validation examples decoded per validation (None: all)
    # validation metrics, names from hybridseq.metrics.TABLE (None: DEFAULT_METRICS of the
    # outputs' kind); checked when the config loads
    metrics: list[str] | None = None
    # what picks the best checkpoint: auto (the first token metric; loss for vectors) | loss |
    # a metric's name; ties go to the lower validation loss
    select: str = "auto"
    patience: int | None = None  # stop after this many validations without improvement
    validate_first: bool = False  # also validate the untrained model (it can be the best)
    # also keep the weights of the last N validations as step-<N> checkpoints (0: none), for
    # checkpoint averaging (`hybridseq average`); with `ema`, the averaged weights, as in `best`
    keep_checkpoints: int = 0
    progress: bool = True  # show a progress bar
    # write a curve point (mean loss, learning rate, tokens/s, gradient norm, teacher forcing)
    # to OUT/metrics.jsonl and TensorBoard every N steps; validations are written as they run
    log_every: int = 10

    def __post_init__(self) -> None:
        _choice("train.device", self.device, ("auto", "cpu", "cuda"))
        _choice("train.optimizer", self.optimizer, ("adam", "adamw"))
        _choice("train.decay", self.decay, ("none", "linear", "cosine", "inverse_sqrt"))
        _choice("train.decay_horizon", self.decay_horizon, ("steps", "minutes"))
        _choice("train.precision", self.precision, ("float32", "bfloat16"))
        if self.decay_horizon == "minutes" and self.max_minutes is None:
            raise ConfigError("train.decay_horizon: 'minutes' needs train.max_minutes")
        losses = ("auto", "ce", "mse", "mae", "mape", "smape", "quantile")
        _choice("train.loss", self.loss, losses)
        schedules = ("constant", "linear", "exponential", "inverse_sigmoid")
        _choice("train.sampling_schedule", self.sampling_schedule, schedules)
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError(f"train.teacher_forcing: {self.teacher_forcing} is not in [0, 1]")
        if self.sampling_schedule == "exponential" and not 0.0 < self.sampling_k < 1.0:
            raise ConfigError("train.sampling_k: the exponential schedule needs 0 < k < 1")
        if self.sampling_schedule == "inverse_sigmoid" and self.sampling_k < 1.0:
            raise ConfigError("train.sampling_k: the inverse_sigmoid schedule needs k >= 1")
        for name in (
            "batch_size",
            "max_steps",
            "eval_every",
            "processes",
            "log_every",
            "accumulate",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be >= 1")
        if self.keep_checkpoints < 0:
            raise ConfigError("train.keep_checkpoints: must be >= 0")
        _at_least(
            "train", self, ("threads", "eval_max", "max_epochs", "patience", "batch_tokens"), 1
        )
        _at_least("train", self, ("warmup_steps",), 0)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing: {self.label_smoothing} is not in [0, 1)")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"train.ema: {self.ema} is not in [0, 1)")


DEFAULT_METRICS = {
    metrics.TOKENS: ("exact_match", "token_accuracy"),
    metrics.VECTORS: ("mse", "mae", "mape", "smape"),
}


@dataclass
class DecodeConfig:
    """How predictions are produced."""

    beam: int = 1  # 1: greedy
    length_penalty: float = 0.0  # GNMT alpha; 0: rank beams by total log-probability
    max_len_a: float = 1.5  # token outputs stop after a * source_length + b steps
    max_len_b: int = 10
    steps: int | None = None  # vector rollout length (None: the training targets' length)
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ConfigError("decode.beam: must be >= 1")
        _at_least("decode", self, ("steps", "batch_size"), 1)
        _at_least("decode", self, ("max_len_b",), 0)


PER_WINDOW = ("window", "window_last")  # forecast scalings fitted on each window's own source
COMBINE_METHODS = ("best", "mean", "inverse")
SCALE_FREE = ("smape", "mape", "mase")  # series metrics that average across series' levels


@dataclass
class CombineConfig:
    """``forecast.combine``: the model's forecast combined with classical ones (``hybridseq.
    combine``), the members and weights chosen on the validation windows only."""

    # the baselines that are candidates beside the model (names of hybridseq.baselines)
    members: list[str] = field(default_factory=lambda: ["naive2", "ets", "theta", "ces"])
    # best: the one member of lowest validation error; mean: equal weights over the k
    # members of lowest error; inverse: weights proportional to 1 / error over those k
    method: str = "best"
    by: str = "run"  # run: one choice for all series; series: one per series (the run's as
    # fallback for a series without a validation window)
    metric: str = "auto"  # smape | mape | mase; auto: train.select if one of them, else smape
    top_k: int | None = None  # mean and inverse: k (None: k chosen on validation too)

    def __post_init__(self) -> None:
        _choice("forecast.combine.method", self.method, COMBINE_METHODS)
        _choice("forecast.combine.by", self.by, ("run", "series"))
        _choice("forecast.combine.metric", self.metric, ("auto", *SCALE_FREE))
        for name in self.members:
            _choice("forecast.combine.members", name, baselines.BASELINES)
        if len(set(self.members)) != len(self.members):
            raise ConfigError(f"forecast.combine.members: {self.members} names one twice")
        most = len(self.members) + 1  # the model is always a candidate
        if self.top_k is not None and not 1 <= self.top_k <= most:
            raise ConfigError(f"forecast.combine.top_k: {self.top_k} is not in 1..{most}")


@dataclass
class ForecastConfig:
    """The ``forecast`` section of a forecasting config: how series become windows."""

    horizon: int  # H, the points forecast at once
    lookback: int | None = None  # most past points a window's source holds (None: 3 * H)
    min_lookback: int | None = None  # fewest past points (None: lookback, i.e. fixed length)
    scale: str = "window"  # window | window_last | mean_abs | standard (see fit_scale)
    period: int = 1  # seasonal period m: MASE and the seasonal baselines
    validation: bool = True  # hold out the H points before the test part for validation
    max_windows: int | None = None  # per series, keep the most recent training windows only
    deseasonalize: bool = False  # divide out multiplicative seasonal indices (see fit_seasons)
    window_season: bool = False  # divide each window by its last season's shape (recent_season)
    calendar: bool = False  # sin and cos of the phase in the period as covariates (period > 1)
    combine: CombineConfig | None = None  # the model combined with baselines (see above)

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"forecast.horizon: must be >= 1, got {self.horizon}")
        self.lookback = 3 * self.horizon if self.lookback is None else self.lookback
        self.min_lookback = self.lookback if self.min_lookback is None else self.min_lookback
        if not 1 <= self.min_lookback <= self.lookback:
            raise ConfigError(
                f"forecast.min_lookback ({self.min_lookback}) must be in 1..lookback "
                f"({self.lookback})"
            )
        if self.scale not in PER_WINDOW + ("mean_abs", "standard"):
            raise ConfigError(
                f"forecast.scale: {self.scale!r} is not window, window_last, mean_abs, standard"
            )
        if self.deseasonalize and self.window_season:
            raise ConfigError("forecast.deseasonalize and forecast.window_season: choose one")
        if self.period < 1 or (self.max_windows is not None and self.max_windows < 1):
            raise ConfigError("forecast.period and forecast.max_windows must be >= 1")
        if self.calendar and self.period < 2:
            raise ConfigError("forecast.calendar: the phase features need forecast.period > 1")
        if self.combine is not None and not self.validation:
            raise ConfigError(
                "forecast.combine: chosen on the validation windows; needs forecast.validation"
            )


@dataclass
class Config:
    """The whole run: data, model, training and decoding; with ``forecast``, a model of series
    whose training pairs are the series' windows (made by ``hybridseq.forecast``, so the data
    section then names no files)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    forecast: ForecastConfig | None = None

    def __post_init__(self) -> None:
        self._check_data()
        self._check_metrics()
        self._check_sharing()
        quantile_model = self.model.quantiles is not None
        if self.train.loss == "quantile" and not quantile_model:
            raise ConfigError("train.loss: 'quantile' needs model.quantiles, e.g. [0.1, 0.5, 0.9]")
        if quantile_model and self.train.loss not in ("auto", "quantile"):
            raise ConfigError(
                f"train.loss: {self.train.loss!r} cannot fit model.quantiles; use quantile or auto"
            )

    def _check_data(self) -> None:
        files = [
            n for n in ("train", "valid", "test", "synth") if getattr(self.data, n) is not None
        ]
        if self.forecast is not None and files:
            raise ConfigError(
                f"data.{files[0]}: a forecast config's data are the windows of the series it is "
                "trained on; remove it"
            )
        if self.forecast is None and self.data.train is None and self.data.synth is None:
            raise ConfigError("data: give data.train (a file) or data.synth (a synthetic task)")

    def _check_sharing(self) -> None:
        """Copy attention, tied and shared embeddings need token data on the sides they use."""
        m, vectors = self.model, self.target_kind == metrics.VECTORS
        for on, key in ((m.copy, "model.copy"), (m.tie_embeddings, "model.tie_embeddings")):
            if on and vectors:
                raise ConfigError(f"{key}: only for token targets (this config's are vectors)")
        if self.data.share_vocab and vectors:
            raise ConfigError("data.share_vocab: only for token sources and targets")
        shares_source = m.tie_embeddings and self.data.share_vocab
        if shares_source and m.family == "hybrid" and m.emb_dim != m.d_model:
            raise ConfigError(
                f"model.tie_embeddings with data.share_vocab: the hybrid's source embedding "
                f"is d_model wide, so emb_dim ({m.emb_dim}) must equal d_model ({m.d_model})"
            )

    @property
    def target_kind(self) -> str:
        """What the outputs are: tokens, or vectors (of a synthetic task, a .jsonl file, or
        the windows of a forecast)."""
        synth_task = self.data.synth.task if self.data.synth is not None else None
        train = self.data.train or ""
        vectors = (
            self.forecast is not None
            or synth_task in synthetic.VECTOR_TASKS
            or (self.data.train is not None and train.lower().endswith(".jsonl"))
        )
        return metrics.VECTORS if vectors else metrics.TOKENS

    def _check_metrics(self) -> None:
        """``train.metrics`` and ``train.select`` must name metrics of the metric table that
        score this config's outputs; a metric that needs the history (mase) needs a forecast.
        Unset metrics default to the kind's usual ones."""
        kind, tc = self.target_kind, self.train
        if tc.metrics is None:
            tc.metrics = list(DEFAULT_METRICS[kind])
        names = [("train.metrics", n) for n in tc.metrics]
        if tc.select != "auto":
            names.append(("train.select", tc.select))
        for where, name in names:
            try:
                row = metrics.metric(name, kind, where)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if row.needs_history and self.forecast is None:
                raise ConfigError(
                    f"{where}: {name!r} needs each output's history: only for a forecast config"
                )

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def from_dict(cls: type, raw: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``raw``, checking every key and type.

    Raises:
        ConfigError: naming the dotted key (``train.lr``) that is unknown or mistyped, with the
            closest valid key for a likely typo.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            valid = ", ".join(fields)
            raise ConfigError(f"unknown config key '{where}'{hint} (valid keys: {valid})")
        kwargs[key] = _coerce(hints[key], value, where)
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{path or 'config'}: missing required key '{missing[0]}'")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for option in options:
            try:
                return _coerce(option, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = set(typing.get_args(hint)) - {Ellipsis}
        items = [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)  # 1e3 written for 1000
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file and apply ``section.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return config_from_dict(apply_overrides(raw, overrides or []))


def config_from_dict(raw: dict[str, Any]) -> Config:
    return from_dict(Config, raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``a.b.c=value`` strings applied (values parsed as YAML)."""
    raw = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=0.001")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        try:
            node[parts[-1]] = parse_yaml(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {e}") from None
    return raw


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
