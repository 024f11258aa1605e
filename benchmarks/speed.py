"""Training and decoding speed of hybridseq, side by side with a plain implementation of the
seeds' per-step algorithm (``benchmarks/reference.py``), in one run.

    python benchmarks/speed.py [--quick] [--json] [--families lstm_attention,hybrid]
        [--impls hybridseq,reference] [--device cpu|cuda]

Task (issue #3): vocabulary 1,000 per side, source lengths uniform in 10-30, target = the source
reversed (plus EOS), batches of 64 sentences. Models: seed 002's shape (embedding 256, hidden
512, 2 layers, 10.47 M parameters) and the hybrid (seed 000's encoder: d_model 512, 8 heads,
6 layers, feed-forward 2048; the same LSTM decoder with additive attention).

Measured per family and implementation, each in a fresh process (so peak memory is its own):
training target tokens/s, greedy and beam-5 decoding tokens/s at batch 64, batch-1 latency of a
30-token output, and peak resident memory; for hybridseq also batch-1 latency and greedy speed
with the decoder's weights in bfloat16 and float16 (``hybridseq predict --dtype``). Decoding runs
untrained models with EOS suppressed, so every output is exactly source length + 1 tokens long
in both implementations: the work is fixed and identical. MFU is the model's useful FLOPs per
second (counted analytically, padding excluded) over this machine's fp32 matmul ceiling
(1024x1024 ``torch.mm``), measured in the same run. Each number is the median over repeats,
with the min-max spread; a repeat during which other processes used more than 10 % of the CPU
is rerun, and marked ``*`` if it stays busy.

``--device cuda`` runs the same measurements on a GPU: timings end with a device synchronize,
peak memory is the GPU's (``torch.cuda.max_memory_allocated``), the ceilings are a 4096^2
float32 product with TF32 off and an 8192^2 bfloat16 one, and hybridseq's training (forward and
backward), greedy and beam decoding are measured with their CUDA-graph replays (the defaults;
training first takes two batches of each padded shape, so every shape is recorded) and without
them. The impl ``hybridseq_bf16`` trains and decodes under bfloat16 autocast; its MFU is over
the bfloat16 ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import (  # noqa: E402
    PlainDecoder,
    PlainLSTMEncoder,
    PlainSeq2Seq,
    PlainTransformerEncoder,
)

from hybridseq.config import ModelConfig, TrainConfig  # noqa: E402
from hybridseq.cudagraph import GraphedBackward, pad_to_multiple  # noqa: E402
from hybridseq.data import batch_indices, collate, pad_batch  # noqa: E402
from hybridseq.decode import beam_search, greedy  # noqa: E402
from hybridseq.model import build_model  # noqa: E402
from hybridseq.training import batch_loss  # noqa: E402
from hybridseq.vocab import BOS_ID, EOS_ID, PAD_ID  # noqa: E402

VOCAB, BATCH, BEAM = 1000, 64, 5
DEVICE = torch.device("cpu")  # the worker's device (--device)
SHAPES = {
    "lstm_attention": dict(
        family="lstm_attention",
        emb_dim=256,
        enc_hidden=512,
        enc_layers=2,
        dec_hidden=512,
        dec_layers=2,
        dropout=0.5,
    ),
    "hybrid": dict(
        family="hybrid",
        d_model=512,
        heads=8,
        ff_dim=2048,
        enc_layers=6,
        emb_dim=256,
        dec_hidden=512,
        dec_layers=2,
        decoder_init="last",
        dropout=0.1,
    ),
}


# ---------------------------------------------------------------------------- task and FLOPs
def make_pairs(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        src = torch.tensor([rng.randrange(4, VOCAB) for _ in range(rng.randint(10, 30))])
        pairs.append((src, src.flip(0)))
    return pairs


def forward_macs(cfg: ModelConfig, s: int, t: int) -> int:
    """Multiply-accumulates of one forward pass over a source of s and a target of t tokens
    (EOS included); the keys of additive attention are projected once per source token."""
    h, e = cfg.dec_hidden, cfg.memory_dim
    if cfg.family == "lstm_attention":
        widths = [cfg.emb_dim] + [cfg.enc_hidden] * (cfg.enc_layers - 1)
        enc = s * sum(4 * cfg.enc_hidden * (w + cfg.enc_hidden) for w in widths)
    else:
        d = cfg.d_model
        enc = cfg.enc_layers * s * (4 * d * d + 2 * d * cfg.ff_dim + 2 * s * d)
    keys = s * e * h
    per_step = (
        4 * h * (cfg.emb_dim + e + h)  # first decoder layer
        + (cfg.dec_layers - 1) * 4 * h * 2 * h
        + h * h  # query projection
        + s * h  # v . tanh(...)
        + s * e  # context
        + (h + e) * VOCAB  # output layer
    )
    return enc + keys + t * per_step


def flops(cfg: ModelConfig, pairs, train: bool) -> float:
    macs = sum(forward_macs(cfg, len(s), len(t) + 1) for s, t in pairs)
    return 2.0 * macs * (3 if train else 1)


# ---------------------------------------------------------------------------- timing
def _busy_jiffies() -> int:
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # minus idle and iowait


def sync() -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn) -> tuple[float, bool]:
    """Run fn; return (seconds, whether other processes kept the CPU busy meanwhile)."""
    hz = os.sysconf("SC_CLK_TCK")
    sync()
    busy0, cpu0, t0 = _busy_jiffies(), time.process_time(), time.perf_counter()
    fn()
    sync()
    wall = time.perf_counter() - t0
    foreign = (_busy_jiffies() - busy0) / hz - (time.process_time() - cpu0)
    return wall, foreign > 0.10 * wall * (os.cpu_count() or 1)


def measure(fn, work: float, repeats: int) -> dict:
    """Median work/second over repeats, rerunning a repeat (twice at most) that ran under load."""
    rates, marked = [], False
    for _ in range(repeats):
        for _attempt in range(3):
            seconds, busy = timed(fn)
            if not busy:
                break
        marked |= busy
        rates.append(work / seconds)
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "repeats": repeats,
        "loaded": marked,
    }


def latency_ms(rates: dict) -> dict:
    """``measure``'s decodes/s as milliseconds per decode (the fastest rate is the least)."""
    ms = {"median": 1000.0 / rates["median"], "min": 1000.0 / rates["max"]}
    return {**rates, **ms, "max": 1000.0 / rates["min"]}


def matmul_ceiling(repeats: int = 5, n: int = 1024, dtype=torch.float32) -> float:
    """FLOP/s of an n x n matrix product on DEVICE, in dtype (float32 without TF32: torch's
    default, which the benchmark keeps)."""
    assert not torch.backends.cuda.matmul.allow_tf32
    a = torch.randn(n, n, device=DEVICE, dtype=dtype)
    b = torch.randn(n, n, device=DEVICE, dtype=dtype)
    for _ in range(3):
        a @ b

    def run():
        for _ in range(10):
            a @ b

    return measure(run, 10 * 2 * n**3, repeats)["median"]


# ---------------------------------------------------------------------------- implementations
def build_ours(cfg: ModelConfig):
    return build_model(cfg)


def build_reference(cfg: ModelConfig) -> PlainSeq2Seq:
    if cfg.family == "lstm_attention":
        enc = PlainLSTMEncoder(VOCAB, cfg.emb_dim, cfg.enc_hidden, cfg.enc_layers, cfg.dropout)
    else:
        enc = PlainTransformerEncoder(
            VOCAB, cfg.d_model, cfg.heads, cfg.ff_dim, cfg.enc_layers, cfg.dec_layers, cfg.dropout
        )
    dec = PlainDecoder(VOCAB, cfg.emb_dim, cfg.dec_hidden, cfg.dec_layers, cfg.dropout)
    return PlainSeq2Seq(enc, dec)


def ours_train_step(model, opt, pairs, tc: TrainConfig, graphs: GraphedBackward | None):
    """The library's step: forward and backward (CUDA-graph replays with ``graphs``), clip,
    Adam."""
    batch = collate(pairs, list(range(len(pairs)))).to(DEVICE)
    if graphs is not None:
        graphs(batch)
    else:
        opt.zero_grad(set_to_none=True)
        batch_loss(model, batch, tc, "ce").backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def _seq_first(pairs):
    src, mask = pad_batch([s for s, _ in pairs], PAD_ID)
    bos, eos = torch.tensor([BOS_ID]), torch.tensor([EOS_ID])
    trg, _ = pad_batch([torch.cat([bos, t, eos]) for _, t in pairs], PAD_ID)
    return src.t().contiguous().to(DEVICE), mask.to(DEVICE), trg.t().contiguous().to(DEVICE)


def reference_train_step(model, opt, pairs, criterion):
    src, mask, trg = _seq_first(pairs)
    out = model(src, mask, trg)
    loss = criterion(out[1:].reshape(-1, VOCAB), trg[1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def suppress_eos(model, ours: bool) -> None:
    head = model.head if ours else model.decoder.fc_out
    with torch.no_grad():
        head.bias[EOS_ID] = -1e4


def decode_batch(model, pairs, ours: bool, beam: int, graph: bool = True) -> None:
    """Decode ``pairs``' sources (graph: hybridseq's CUDA-graph replay on a GPU)."""
    if ours:
        src, mask = pad_batch([s for s, _ in pairs], PAD_ID)
        src, mask = src.to(DEVICE), mask.to(DEVICE)
        limits = mask.sum(1) + 1
        if beam > 1:
            beam_search(model, src, mask, limits, beam, cuda_graph=graph)
        else:
            greedy(model, src, mask, limits, cuda_graph=graph)
        return
    src, mask, _ = _seq_first(pairs)
    if beam > 1:
        model.beam(src, mask, beam, BOS_ID)
    else:
        model.greedy(src, mask, int(mask.sum(1).max()) + 1, BOS_ID)


def worker(family: str, impl: str, quick: bool, device: str = "cpu") -> dict:
    """Every measurement for one family and implementation (run in its own process)."""
    global DEVICE
    DEVICE = torch.device(device)
    torch.manual_seed(0)
    cfg = ModelConfig(**SHAPES[family], src_vocab=VOCAB, tgt_vocab=VOCAB)
    ours, half = impl.startswith("hybridseq"), impl.endswith("_bf16")
    model = (build_ours(cfg) if ours else build_reference(cfg)).to(DEVICE)
    gpu = DEVICE.type == "cuda"
    repeats = 2 if quick else (5 if gpu else 3)
    n_train = 1 if quick else (10 if gpu else 3)
    pairs = make_pairs(BATCH * (n_train * repeats + 12) * 2, seed=1)
    lengths = [len(s) for s, _ in pairs]
    if ours:  # the library's batching: length-bucketed
        order = batch_indices(lengths, BATCH, bucket=True, shuffle=True, seed=0)
    else:  # the plain loop: batches in data order
        order = [list(range(i, i + BATCH)) for i in range(0, len(pairs), BATCH)]
    batches = [[pairs[i] for i in b] for b in order if len(b) == BATCH]
    result = {"family": family, "impl": impl, "threads": torch.get_num_threads(), "half": half}

    # training
    model.train()
    criterion = torch.nn.CrossEntropyLoss(ignore_index=PAD_ID)
    tc = TrainConfig(precision="bfloat16" if half else "float32")
    warm, rest = warm_up_batches(batches, twice=gpu and not quick)

    def rates_of(graphed: bool) -> dict:
        opt = torch.optim.Adam(model.parameters(), fused=gpu and ours)  # the seed: plain Adam
        params = list(model.parameters())
        graphs = None
        if graphed:
            graphs = GraphedBackward(
                params, lambda b, c: batch_loss(model, b, tc, "ce", capturing=c)
            )
        step = (
            (lambda b: ours_train_step(model, opt, b, tc, graphs))
            if ours
            else (lambda b: reference_train_step(model, opt, b, criterion))
        )
        for b in warm:
            step(b)
        return train_rates(step, rest, repeats, n_train)

    result["train"] = rates_of(graphed=ours and gpu)
    if ours and gpu:
        result["train_eager"] = rates_of(graphed=False)
    per_token = flops(cfg, [p for b in batches for p in b], True) / sum(
        len(t) + 1 for b in batches for _, t in b
    )
    result["train_flops_per_token"] = per_token
    result["peak_rss_mb_train"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if gpu:
        result["peak_gpu_mb_train"] = torch.cuda.max_memory_allocated() / 2**20

    # decoding (under autocast for the bfloat16 impl)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=half):
        decoding(model, cfg, batches, ours, quick, repeats, result)
    return result


def warm_up_batches(batches: list, twice: bool) -> tuple[list, list]:
    """(warm-up batches, the rest): the first batch; with ``twice``, two batches of every
    padded shape (``pad_to_multiple``, as ``GraphedBackward`` pads), so that on a GPU every
    shape is recorded before the timing."""
    if not twice:
        return batches[:1], batches[1:]
    seen: Counter[tuple[int, int]] = Counter()
    warm, rest = [], []
    for b in batches:
        padded = pad_to_multiple(collate(b, list(range(len(b)))), 8)
        shape = (padded.src.shape[1], padded.tgt_in.shape[1])
        seen[shape] += 1
        (warm if seen[shape] <= 2 else rest).append(b)
    return warm, rest


def train_rates(step, batches, repeats: int, n_train: int) -> dict:
    """Target tokens/s of ``step`` over ``repeats`` runs of ``n_train`` different batches."""
    cursor = iter(batches)
    rates, busy_any = [], False
    for _ in range(repeats):
        chosen = [next(cursor) for _ in range(n_train)]
        tokens = sum(len(t) + 1 for b in chosen for _, t in b)
        it = iter(chosen)
        seconds, busy = timed(lambda it=it: [step(next(it)) for _ in range(n_train)])
        busy_any |= busy
        rates.append(tokens / seconds)
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "repeats": repeats,
        "loaded": busy_any,
    }


def decoding(model, cfg, batches, ours: bool, quick: bool, repeats: int, result: dict) -> None:
    """Greedy and beam decoding speed and batch-1 latency, into ``result``."""
    gpu = DEVICE.type == "cuda"
    model.eval()
    suppress_eos(model, ours)
    dec_batch = batches[-1]
    tokens = sum(len(s) + 1 for s, _ in dec_batch)
    decode_batch(model, dec_batch[:4], ours, 1)  # warm-up
    result["greedy"] = measure(lambda: decode_batch(model, dec_batch, ours, 1), tokens, repeats)
    if ours and gpu:  # the same without the CUDA graph
        result["greedy_eager"] = measure(
            lambda: decode_batch(model, dec_batch, ours, 1, graph=False), tokens, repeats
        )
    beam_pairs = dec_batch if ours else dec_batch[: 8 if quick else 16]
    beam_tokens = sum(len(s) + 1 for s, _ in beam_pairs)
    result["beam"] = measure(
        lambda: decode_batch(model, beam_pairs, ours, BEAM), beam_tokens, 1 if not ours else repeats
    )
    if ours and gpu:
        result["beam_eager"] = measure(
            lambda: decode_batch(model, beam_pairs, ours, BEAM, graph=False), beam_tokens, repeats
        )
    result["decode_flops_per_token"] = flops(cfg, dec_batch, False) / tokens
    one = [(torch.arange(4, 33), torch.arange(4, 33).flip(0))]  # 29 symbols -> 30 tokens
    decode_batch(model, one, ours, 1)
    lat = measure(lambda: decode_batch(model, one, ours, 1), 1.0, (2 if quick else 3) * repeats)
    result["latency_ms"] = latency_ms(lat)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if gpu:
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["peak_mb"] = result["peak_gpu_mb"]
    else:
        result["peak_mb"] = result["peak_rss_mb"]
    if gpu and ours:
        lat = measure(lambda: decode_batch(model, one, ours, 1, graph=False), 1.0, 3 * repeats)
        result["latency_ms_eager"] = latency_ms(lat)
    if ours and not result["half"]:  # decoder weights in a half precision, as api.load(dtype=)
        # (float16 follows bfloat16 in place: its values are bf16-rounded; the work is the same)
        result["weights"] = {}
        for name, dtype in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
            model.decode_in(dtype)
            decode_batch(model, one, ours, 1)
            lat = measure(lambda: decode_batch(model, one, ours, 1), 1.0, 3 * repeats)
            greedy_b64 = measure(lambda: decode_batch(model, dec_batch, ours, 1), tokens, 1)
            result["weights"][name] = {
                "latency_ms": latency_ms(lat),
                "greedy": greedy_b64,
            }


def cell_kernels(repeats: int) -> dict:
    """Forward time of one decoder step (2 LSTM layers, input 768, hidden 512) by kernel: the
    seed's ``nn.LSTM`` call per step through oneDNN and through PyTorch's native kernel, and
    hybridseq's cell (each layer one fused GEMM over [input; h])."""
    from hybridseq.decoder import DecoderState, LSTMDecoder

    out = {}
    dec = LSTMDecoder(768, 512, 2, 0.0).eval()
    weights = dec.step_weights()
    for b in (64, 1):
        x = torch.randn(1, b, 768)
        h = torch.zeros(2, b, 512)
        state = DecoderState(h, h.clone())

        def seed_call(x=x, h=h):
            for _ in range(30):
                dec.lstm(x.transpose(0, 1), (h, h))

        def fused(x=x, state=state):
            for _ in range(30):
                dec.step(state, x[0], weights)

        with torch.no_grad():
            for name, fn, mkldnn in (
                ("onednn", seed_call, True),
                ("native", seed_call, False),
                ("fused_gemm", fused, True),
            ):
                with torch.backends.mkldnn.flags(enabled=mkldnn):
                    fn()
                    m = measure(fn, 30.0, repeats)  # steps per second
                out[f"batch{b}_{name}_ms_per_step"] = 1000.0 / m["median"]
    return out


# ---------------------------------------------------------------------------- report
def run_worker(family: str, impl: str, quick: bool, device: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", family, impl, "--device", device]
    cmd += ["--quick"] if quick else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(m: dict, scale: float = 1.0, digits: int = 0) -> str:
    star = "*" if m.get("loaded") else ""
    return (
        f"{m['median'] * scale:,.{digits}f} ({m['min'] * scale:,.{digits}f}-"
        f"{m['max'] * scale:,.{digits}f}){star}"
    )


def report(results: list[dict], ceilings: dict, device: str) -> dict:
    rows = {}
    where = f"{results[0]['threads']} threads" if device == "cpu" else torch.cuda.get_device_name()
    print(
        "\nmatmul ceilings: "
        + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in ceilings.items())
        + f"; {where}\n"
    )
    head = f"{'family':<15}{'impl':<15}{'train tok/s':>27}{'MFU':>6}{'greedy tok/s':>29}"
    head += f"{'beam5 tok/s':>27}{'batch-1 ms':>20}{'peak MB':>9}"
    print(head)
    for r in results:
        ceiling = ceilings["bfloat16" if r["half"] and "bfloat16" in ceilings else "float32"]
        mfu = r["train"]["median"] * r["train_flops_per_token"] / ceiling
        r["train_mfu"] = mfu
        print(
            f"{r['family']:<15}{r['impl']:<15}{fmt(r['train']):>27}{mfu:>6.0%}"
            f"{fmt(r['greedy']):>29}{fmt(r['beam']):>27}{fmt(r['latency_ms'], 1, 1):>20}"
            f"{r['peak_mb']:>9.0f}"
        )
        rows[(r["family"], r["impl"])] = r
    print()
    ratios = {}
    for family in sorted({r["family"] for r in results}):
        ours, ref = rows.get((family, "hybridseq")), rows.get((family, "reference"))
        if not ours or not ref:
            continue
        ratio = {
            "train": ours["train"]["median"] / ref["train"]["median"],
            "greedy": ours["greedy"]["median"] / ref["greedy"]["median"],
            "beam": ours["beam"]["median"] / ref["beam"]["median"],
            "latency": ref["latency_ms"]["median"] / ours["latency_ms"]["median"],
            "beam_cost_vs_greedy": ours["greedy"]["median"] / ours["beam"]["median"],
        }
        ratios[family] = ratio
        print(
            f"{family}: hybridseq / reference: training {ratio['train']:.2f}x, greedy "
            f"{ratio['greedy']:.2f}x, beam-5 {ratio['beam']:.2f}x, batch-1 latency "
            f"{ratio['latency']:.2f}x faster; beam-5 costs {ratio['beam_cost_vs_greedy']:.2f}x "
            f"greedy; training MFU {ours['train_mfu']:.0%} (reference {ref['train_mfu']:.0%})"
        )
        half = rows.get((family, "hybridseq_bf16"))
        if half:
            print(
                f"{family}: hybridseq under bfloat16 autocast / float32: training "
                f"{half['train']['median'] / ours['train']['median']:.2f}x, greedy "
                f"{half['greedy']['median'] / ours['greedy']['median']:.2f}x"
            )
    for r in results:
        if "train_eager" in r:
            print(
                f"{r['family']}: {r['impl']}, training without CUDA graphs: "
                f"{fmt(r['train_eager'])} tok/s; the graphs are "
                f"{r['train']['median'] / r['train_eager']['median']:.2f}x faster"
            )
        if "greedy_eager" in r:
            print(
                f"{r['family']}: {r['impl']}, without CUDA graphs: greedy b={BATCH} "
                f"{fmt(r['greedy_eager'])} tok/s, beam-5 {fmt(r['beam_eager'])} tok/s, batch-1 "
                f"{fmt(r['latency_ms_eager'], 1, 1)} ms; the graphs are "
                f"{r['greedy']['median'] / r['greedy_eager']['median']:.2f}x, "
                f"{r['beam']['median'] / r['beam_eager']['median']:.2f}x and "
                f"{r['latency_ms_eager']['median'] / r['latency_ms']['median']:.2f}x faster"
            )
        for name, w in r.get("weights", {}).items():
            print(
                f"{r['family']}: {r['impl']}, decoder weights in {name}: batch-1 "
                f"{fmt(w['latency_ms'], 1, 1)} ms ("
                f"{r['latency_ms']['median'] / w['latency_ms']['median']:.2f}x float32's "
                f"speed), greedy b={BATCH} {fmt(w['greedy'])} tok/s"
            )
    return {"ceiling_flops": ceilings, "device": device, "results": results, "ratios": ratios}


def main() -> None:
    global DEVICE
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats: under a minute or two")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--families", default="lstm_attention,hybrid")
    p.add_argument(
        "--impls", default="hybridseq,reference", help="of hybridseq, hybridseq_bf16, reference"
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device here")
    if args.worker:
        print(json.dumps(worker(*args.worker, args.quick, args.device)))
        return
    DEVICE = torch.device(args.device)
    if args.device == "cpu":
        ceilings = {"float32": matmul_ceiling()}
        kernels = cell_kernels(1 if args.quick else 5)
        print(
            "decoder step (2 layers, 768 -> 512), ms per step: "
            + ", ".join(f"{k.replace('_ms_per_step', '')} {v:.3f}" for k, v in kernels.items()),
            file=sys.stderr,
        )
    else:
        ceilings = {
            "float32": matmul_ceiling(n=4096),
            "bfloat16": matmul_ceiling(n=8192, dtype=torch.bfloat16),
        }
        kernels = {}
    results = []
    for family in args.families.split(","):
        for impl in args.impls.split(","):
            print(f"measuring {family} / {impl} ...", file=sys.stderr, flush=True)
            results.append(run_worker(family, impl, args.quick, args.device))
    summary = report(results, ceilings, args.device)
    summary["cell_kernels_ms_per_step"] = kernels
    if kernels:
        print("decoder step kernels (2 layers, input 768, hidden 512), ms per step:")
    for k, v in kernels.items():
        print(f"  {k.replace('_ms_per_step', ''):<22}{v:8.3f}")
    if args.json:
        print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
