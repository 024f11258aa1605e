"""The G2P model served on 127.0.0.1 under load: 1, 8, 32 and 128 concurrent clients, each
posting one word per request for a fixed time, with micro-batching on and off.

    python benchmarks/serve.py [--run RUN] [--duration 10] [--soak 300]

Without ``--run`` (a trained G2P run directory) it serves a model of the G2P recipe's shape
(the shipped g2p_lstm_attention.yaml, 2.4 M) with random weights, whose decoding limit
is set to the word's length + 1 steps (about the phones a trained model emits; untrained, it
would run to the recipe's longer limit). Words come from the CMUdict test set where it is
present (/work/shared/data/g2p-cmudict-test/test.tsv), else are random letters.

Prints per level: clients, batching, requests/s, p50/p95/p99 latency (ms), errors, the
server's peak RSS (VmHWM from /proc), the mean batch and the server's CPU time per request
(which depends far less than the rates on what else keeps the cores busy); and the throughput
ratio at 32 clients. ``--soak S`` then runs 32 clients for S seconds with batching on and
prints the server's RSS every tenth of it (memory should not grow). Every loop is bounded by a
deadline; traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
WORDS = Path("/work/shared/data/g2p-cmudict-test/test.tsv")
PHONES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW "
    "V W Y Z ZH"
).split()


def read_words(limit: int = 5000) -> list[str]:
    """Words of the CMUdict test set, or random lowercase words (lengths 3-12)."""
    if WORDS.is_file():
        words = [line.split("\t")[0] for line in WORDS.read_text().splitlines() if line]
        return sorted(set(words))[:limit]
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 12))) for _ in range(limit)]


def random_g2p_run(out: Path, words: list[str]) -> Path:
    """A checkpoint of the G2P recipe's model with random weights, decoding len + 1 steps."""
    import torch

    from hybridseq import api
    from hybridseq.checkpoint import save_checkpoint
    from hybridseq.codec import Codec, Side
    from hybridseq.model import build_model
    from hybridseq.tokenize import Tokenizer
    from hybridseq.vocab import SPECIALS, Vocab

    letters = sorted({c for w in words for c in w})
    codec = Codec(
        Side(Tokenizer("char"), Vocab(SPECIALS + letters)),
        Side(Tokenizer("whitespace"), Vocab(SPECIALS + PHONES)),
    )
    overrides = [
        f"model.src_vocab={len(codec.source.vocab)}",
        f"model.tgt_vocab={len(codec.target.vocab)}",
        "decode.max_len_a=1.0",
        "decode.max_len_b=1",
    ]
    cfg = api.as_config(ROOT / "hybridseq/configs/g2p_lstm_attention.yaml", overrides)
    torch.manual_seed(0)
    save_checkpoint(out / "best", cfg, build_model(cfg.model).eval(), codec)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    run: Path, max_batch: int, args: argparse.Namespace
) -> tuple[subprocess.Popen, str]:
    """``hybridseq serve`` in a subprocess; returns it and its URL once /healthz answers."""
    port = _free_port()
    cmd = [sys.executable, "-m", "hybridseq.cli", "serve", str(run), "--port", str(port)]
    cmd += ["--max-batch", str(max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not answer /healthz in 120 s")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def client(url: str, words: list[str], seed: int, until: float, out: list) -> None:
    """Post one word per request until ``until``; append (latency s, ok) per request."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for _ in range(1_000_000):  # bounded; the deadline ends it first
            if time.monotonic() >= until:
                return
            start = time.perf_counter()
            try:
                ok = http.post("/v1/predict", json={"inputs": [rng.choice(words)]}).is_success
            except httpx.HTTPError:
                ok = False
            out.append((time.perf_counter() - start, ok))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decoder_calls(url: str) -> dict[int, int]:
    """The server's decoder calls so far by their size in inputs (from /v1/model)."""
    calls = httpx.get(url + "/v1/model", timeout=10.0).json()["batching"]["calls"]
    return {int(k): v for k, v in calls.items()}


def mean_batch(before: dict[int, int], after: dict[int, int]) -> float:
    """Inputs per decoder call between two ``decoder_calls``."""
    calls = {k: after[k] - before.get(k, 0) for k in after}
    return sum(k * v for k, v in calls.items()) / max(1, sum(calls.values()))


def load(url: str, words: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads for ``seconds``: requests/s, latency percentiles (ms), errors."""
    results: list[list] = [[] for _ in range(clients)]
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client, args=(url, words, i, until, results[i]))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    done = [r for rs in results for r in rs]
    ok = sorted(lat for lat, good in done if good)
    cuts = statistics.quantiles(ok, n=100) if len(ok) > 1 else [float("nan")] * 99
    return {
        "rps": len(ok) / seconds,
        "p50": 1000 * cuts[49],
        "p95": 1000 * cuts[94],
        "p99": 1000 * cuts[98],
        "errors": len(done) - len(ok),
    }


def levels(run: Path, words: list[str], args: argparse.Namespace) -> list[dict]:
    """Every client count with batching on (max_batch) and off (1), one server per mode."""
    rows = []
    for batching, max_batch in (("on", args.max_batch), ("off", 1)):
        proc, url = start_server(run, max_batch, args)
        try:
            load(url, words, 4, 2.0)  # warm-up, not reported
            for n in args.clients:
                before, cpu = decoder_calls(url), cpu_seconds(proc.pid)
                row = {"clients": n, "batching": batching, **load(url, words, n, args.duration)}
                served = max(1.0, row["rps"] * args.duration)
                row["cpu_ms"] = 1000 * (cpu_seconds(proc.pid) - cpu) / served
                row["peak_rss_mib"] = memory_kib(proc.pid)["VmHWM"] / 1024
                row["mean_batch"] = mean_batch(before, decoder_calls(url))
                rows.append(row)
                print(_format(row), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return rows


def soak(run: Path, words: list[str], args: argparse.Namespace) -> None:
    """32 clients with batching on for ``args.soak`` seconds; the server's RSS every tenth."""
    proc, url = start_server(run, args.max_batch, args)
    try:
        load(url, words, 4, 2.0)
        slice_s = args.soak / 10
        for i in range(10):
            r = load(url, words, 32, slice_s)
            rss = memory_kib(proc.pid)["VmRSS"] / 1024
            print(
                f"soak {slice_s * (i + 1):6.0f} s: RSS {rss:7.1f} MiB, {r['rps']:6.1f} req/s, "
                f"p99 {r['p99']:6.1f} ms, errors {r['errors']}",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


HEADER = (
    "| clients | batching | req/s | p50 ms | p95 ms | p99 ms | errors | server peak RSS MiB "
    "| mean batch | server CPU ms/req |"
)


def _format(row: dict) -> str:
    return (
        f"| {row['clients']:>7} | {row['batching']:>8} | {row['rps']:7.1f} | {row['p50']:6.1f} "
        f"| {row['p95']:6.1f} | {row['p99']:6.1f} | {row['errors']:6d} "
        f"| {row['peak_rss_mib']:19.1f} | {row['mean_batch']:10.1f} | {row['cpu_ms']:17.2f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, help="a trained G2P run (default: random weights)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    p.add_argument(
        "--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32, 128]
    )
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1, help="the server's decoder threads")
    p.add_argument("--soak", type=float, default=0.0, help="then 32 clients for this long")
    args = p.parse_args()
    words = read_words()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or random_g2p_run(Path(tmp), words)
        what = f"trained run {run}" if args.run else "G2P recipe shape, random weights"
        print(
            f"model: {what}; {len(words)} words; {os.cpu_count()} CPUs; {args.threads} decoder "
            f"thread(s); {args.duration} s per level"
        )
        print(HEADER)
        print("|" + "---|" * 10)
        rows = levels(run, words, args)
        by = {(r["clients"], r["batching"]): r["rps"] for r in rows}
        if (32, "on") in by and by.get((32, "off")):
            print(f"32 clients: batching gives {by[32, 'on'] / by[32, 'off']:.1f}x the throughput")
        if args.soak:
            soak(run, words, args)


if __name__ == "__main__":
    main()
