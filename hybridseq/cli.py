"""The ``hybridseq`` command: a thin layer over ``hybridseq.api``.

    hybridseq train CONFIG [--set key=value ...] [--out DIR] [--resume | --overwrite]
    hybridseq predict CKPT [INPUT] [--beam N] [--dtype float16] [--output FILE] [--attention DIR]
    hybridseq evaluate CKPT DATA [--metrics a,b] [--beam N] [--dtype float16] [--json]
    hybridseq export RUN --out DIR [--quantize int8]   (ONNX; predict/evaluate take DIR too)
    hybridseq synth TASK --n N [--out FILE] [--seed S]
    hybridseq average CKPT [CKPT ...] --out DIR   (or RUN_DIR --last N: its kept step checkpoints)
    hybridseq summary RUN_OR_CONFIG [--json]
    hybridseq demo [--json]
    hybridseq configs [show NAME]   (the example configs shipped in the package)
    hybridseq forecast train|forecast|evaluate ...   (series in a CSV; the `forecast` extra)
    hybridseq serve RUN_OR_EXPORT [--host 127.0.0.1] [--port 8000]   (HTTP; the `serve` extra)

User mistakes (bad config, malformed data, missing checkpoint) print one clear line to stderr
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from hybridseq import api, cli_forecast, runtime
from hybridseq.data import DataError, input_lines
from hybridseq.errors import run_command
from hybridseq.signals import exit_code


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=_jsonable))


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def cmd_train(args: argparse.Namespace) -> None:
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    result = api.train(
        args.config, args.out, args.set, resume=args.resume, log=log, overwrite=args.overwrite
    )
    if args.json:
        _print_json(
            {
                "out": str(result.out_dir),
                "step": result.step,
                "best": result.best,
                "seconds": round(result.seconds, 1),
                "interrupted": result.interrupted,
            }
        )
    if result.interrupted:
        sys.exit(exit_code(result.signum))


PREDICT_CHUNK = 1000  # input lines per model.predict call: output flows, memory stays bounded


def _vectors(line: str, where: str) -> np.ndarray:
    """One input line of vectors: a JSON list of rows (or of numbers)."""
    try:
        with np.errstate(over="ignore"):  # a value past float32 becomes inf, refused later
            return np.asarray(json.loads(line), dtype=np.float32)
    except (ValueError, TypeError, RecursionError) as e:
        raise DataError(f"{where}: expected a JSON list of vectors: {e}") from None


def _source_vectors(model: api.Model, line: str, where: str) -> np.ndarray:
    """An input line of vectors, its width and values checked here, where its line is known."""
    source = _vectors(line, where)
    model.codec.source.encode(source, where)
    return source


def _chunks(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _aligned(lines: Iterator[str], covs: Iterator[str] | None, path: str) -> Iterator[tuple]:
    """(input line, its covariates line or None), refusing files of different lengths."""
    if covs is None:
        yield from ((line, None) for line in lines)
        return
    for n, pair in enumerate(itertools.zip_longest(lines, covs), start=1):
        if None in pair:
            raise DataError(f"{path}:{n}: the covariates and the inputs have different lengths")
        yield pair


def _predict_chunk(model: api.Model, args: argparse.Namespace, first: int, rows: list) -> list:
    """The output lines of input lines ``first, first + 1, ...``: one per line, "" for a blank
    one, so outputs always line up with inputs."""
    where = args.input if args.input and args.input != "-" else "<stdin>"
    keep = [i for i, (line, _) in enumerate(rows) if line.strip()]
    sources: list = [rows[i][0] for i in keep]
    if not model.codec.source.is_tokens:
        sources = [_source_vectors(model, rows[i][0], f"{where}:{first + i}") for i in keep]
    covs = None
    if args.covariates:
        covs = [_vectors(rows[i][1], f"{args.covariates}:{first + i}") for i in keep]
    if args.attention:
        outputs = _attended(model, args, [first + i for i in keep], sources)
    else:
        outputs = model.predict(sources, beam=args.beam, steps=args.steps, covariates=covs)
    lines = [""] * len(rows)
    for i, o in zip(keep, outputs, strict=True):
        lines[i] = o if isinstance(o, str) else json.dumps(np.asarray(o).tolist())
    return lines


def _attended(model, args: argparse.Namespace, numbers: list[int], sources: list) -> list[str]:
    """Decode ``sources`` (input lines ``numbers``) with attention: their best outputs, and per
    input the heatmap of the chosen hypothesis written to ``args.attention``/NNNN.png."""
    from hybridseq.heatmap import draw, file_name

    outputs = []
    found = model.predict(sources, beam=args.beam, attention=True)  # per source its n best
    for number, (best, *_) in zip(numbers, found, strict=True):
        if best.alignment is None:
            raise ValueError("--attention: this model has no attention (model.attention: none)")
        draw(best.alignment, Path(args.attention) / file_name(number), title=f"input {number}")
        outputs.append(best.output)
    return outputs


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """stdout, or ``path`` opened for writing now, so that an unwritable output fails before
    anything is decoded."""
    if not path:
        yield sys.stdout
        return
    try:
        stream = open(path, "w", encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot write the output ({e.strerror or e})") from None
    with stream:
        yield stream


def _load(args: argparse.Namespace):
    """An export directory (export.json), decoded by onnxruntime; else a checkpoint, run or
    ensemble, decoded by torch."""
    if not runtime.is_export(args.checkpoint):
        return api.load([args.checkpoint, *args.ensemble], device=args.device, dtype=args.dtype)
    if args.ensemble or args.dtype != "float32":
        raise ValueError(f"{args.checkpoint} is an export: --ensemble and --dtype are for runs")
    return runtime.load(args.checkpoint)


def cmd_predict(args: argparse.Namespace) -> None:
    model = _load(args)
    model.decode_config(args.beam, args.steps)  # refuses --beam 0, --steps -3 before reading
    if args.attention:
        if not model.codec.target.is_tokens:
            raise ValueError("--attention is for models with a token target")
        Path(args.attention).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(_output(args.output))
        lines = stack.enter_context(input_lines(args.input))
        covs = stack.enter_context(input_lines(args.covariates)) if args.covariates else None
        first = 1
        for rows in _chunks(_aligned(lines, covs, args.covariates), PREDICT_CHUNK):
            out.write("".join(line + "\n" for line in _predict_chunk(model, args, first, rows)))
            out.flush()
            first += len(rows)


def cmd_evaluate(args: argparse.Namespace) -> None:
    model = _load(args)
    names = args.metrics.split(",") if args.metrics else None
    if isinstance(model, runtime.ExportedModel):
        from hybridseq.export import evaluate

        result = evaluate(model, args.data, metrics=names, beam=args.beam)
    else:
        result = model.evaluate(args.data, metrics=names, beam=args.beam)
    if args.json:
        _print_json(result)
    else:
        for k, v in result.items():
            print(f"{k}\t{v:.4f}")


def cmd_export(args: argparse.Namespace) -> None:
    from hybridseq.export import export

    if (Path(args.run) / "forecast.json").is_file():  # a forecaster: its fitted state too
        from hybridseq.forecast import export_forecaster

        out = export_forecaster(args.run, args.out, quantize=args.quantize)
        print(f"exported {args.run} to {out}: the ONNX graphs, export.json and forecast.json")
        return
    out = export(args.run, args.out, quantize=args.quantize)
    print(f"exported {args.run} to {out}: encoder.onnx, decoder_step.onnx, export.json")


def cmd_average(args: argparse.Namespace) -> None:
    out, averaged = api.average(args.checkpoints, args.out, last=args.last)
    print(f"averaged {len(averaged)} checkpoints into {out}: {', '.join(map(str, averaged))}")


def cmd_synth(args: argparse.Namespace) -> None:
    kwargs = {}
    for key in ("min_len", "max_len", "vocab", "src_len", "tgt_len", "dim"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    out = args.out
    pairs = api.synth(args.task, args.n, out=out, seed=args.seed, **kwargs)
    if out is None:
        for s, t in pairs:
            if isinstance(s, str):
                print(f"{s}\t{t}")
            else:
                print(json.dumps({"source": s.tolist(), "target": t.tolist()}))
    else:
        print(f"wrote {len(pairs)} pairs to {out}", file=sys.stderr)


def cmd_summary(args: argparse.Namespace) -> None:
    info = api.summary(args.config, args.set)
    if args.json:
        _print_json(info)
        return
    print(
        f"{info['family']}: {info['source']} -> {info['target']}, attention "
        f"{info['attention']}, decoder init {info['decoder_init']}"
    )
    print(f"  sizes from {info['sizes_from']}")
    if info["placeholders"]:
        print(f"  ({', '.join(info['placeholders'])}: placeholders, not the data's)")
    for name, comp in info["components"].items():
        print(f"  {name:<14}{comp['parameters']:>14,}")
        for p, shape in comp["shapes"].items():
            print(f"      {p:<28}{str(tuple(shape)):>20}")
    print(f"  {'total':<14}{info['parameters']:>14,}")


def cmd_demo(args: argparse.Namespace) -> None:
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    result = api.demo(args.out, args.set, log=log)
    if args.json:
        _print_json({k: v for k, v in result.items() if k != "examples"})
        return
    print(
        f"\nheld-out exact match: {100 * result['exact_match']:.1f}% on "
        f"{result['held_out']} sequences never seen in training "
        f"(token accuracy {100 * result['token_accuracy']:.1f}%), "
        f"trained {result['steps']} steps in {result['train_seconds']}s"
    )
    for ex in result["examples"]:
        mark = "ok " if ex["predicted"] == ex["target"] else "ERR"
        print(f"  {mark} {ex['source']}  ->  {ex['predicted']}")


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        from hybridseq.serve import serve
    except ImportError as e:  # the optional extra
        raise ValueError(f"serve needs the serve extra (pip install -e '.[serve]'): {e}") from None
    limits = {k: getattr(args, k) for k in ("max_batch", "max_wait_ms", "max_inputs")}
    limits.update(max_input_chars=args.max_input_chars, max_body_bytes=args.max_body_bytes)
    serve(args.model, args.host, args.port, args.threads, **limits)


def _add_decoding(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that decodes a checkpoint (predict, evaluate)."""
    parser.add_argument(
        "--beam", type=int, default=None, help="beam size (1: greedy; default: decode.beam)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument(
        "--dtype",
        choices=list(api.PRECISIONS),
        default="float32",
        help="precision of the decoder's weights while decoding (the encoder stays float32): "
        "half the bytes per step, faster one-at-a-time decoding on a CPU (BENCHMARKS.md)",
    )
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="CKPT",
        help="decode with this checkpoint too, averaging the models' probabilities (repeatable)",
    )


DESCRIPTION = (
    "Sequence-to-sequence learning with LSTM-attention and Transformer-LSTM models, over "
    "tokens and real-valued vectors: train, decode, evaluate, export, serve and forecast."
)
Commands = argparse._SubParsersAction


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hybridseq", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"hybridseq {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_train,
        _add_predict,
        _add_evaluate,
        _add_export,
        _add_average,
        _add_synth,
        _add_summary,
        _add_demo,
        _add_configs,
        _add_plot,
        _add_prepare,
        _add_forecast,
        _add_serve,
    ):
        add(sub)
    return p


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("hybridseq")
    except PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


def _command(sub: Commands, name: str, help: str, func) -> argparse.ArgumentParser:
    """A subcommand whose --help shows every default."""
    c = sub.add_parser(
        name, help=help, description=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    c.set_defaults(func=func)
    return c


def _add_set(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=5e-4 (repeatable)",
    )


def _add_train(sub: Commands) -> None:
    t = _command(sub, "train", "train a model from a YAML config", cmd_train)
    t.add_argument("config", help=CONFIG_HELP)
    _add_set(t)
    t.add_argument("--out", default="runs/latest", help="run directory: checkpoints best, last")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last")
    t.add_argument(
        "--overwrite", action="store_true", help="replace the run OUT holds (its checkpoints)"
    )
    t.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_predict(sub: Commands) -> None:
    pr = _command(sub, "predict", "decode inputs, one output line per input line", cmd_predict)
    pr.add_argument("checkpoint", help="run, checkpoint or export directory")
    pr.add_argument("input", nargs="?", help="input file (default: stdin)")
    pr.add_argument("--steps", type=int, default=None, help="vector rollout length")
    pr.add_argument(
        "--covariates",
        help="for a model trained with covariates: a file with, per input line, the JSON list "
        "of the covariate vectors of its output steps (their number is the steps)",
    )
    pr.add_argument("--output", help="write here instead of stdout")
    pr.add_argument(
        "--attention",
        metavar="DIR",
        help="also draw each input's attention heatmap (of the output chosen) as DIR/0001.png, "
        "DIR/0002.png, ... numbered by input line (needs matplotlib)",
    )
    _add_decoding(pr)


def _add_evaluate(sub: Commands) -> None:
    e = _command(sub, "evaluate", "score a run on a data file", cmd_evaluate)
    e.add_argument("checkpoint", help="run, checkpoint or export directory")
    e.add_argument("data", help="data file (.tsv, .jsonl or src,tgt)")
    e.add_argument("--metrics", help="comma-separated (default: the config's train.metrics)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_decoding(e)


def _add_export(sub: Commands) -> None:
    x = _command(sub, "export", "write ONNX graphs of a run for onnxruntime", cmd_export)
    x.add_argument("run", metavar="RUN", help="a run or checkpoint directory")
    x.add_argument("--out", required=True, help="the export directory")
    x.add_argument("--quantize", choices=["int8"], help="dynamic int8 matrix products")


def _add_average(sub: Commands) -> None:
    a = _command(sub, "average", "average the weights of checkpoints of one run", cmd_average)
    a.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoint directories")
    a.add_argument("--out", required=True, help="the averaged checkpoint's directory")
    a.add_argument(
        "--last",
        type=int,
        help="each CKPT is a run directory: average its newest N step-<N> checkpoints "
        "(kept with train.keep_checkpoints: N)",
    )


def _add_synth(sub: Commands) -> None:
    s = _command(sub, "synth", "write a synthetic data set", cmd_synth)
    s.add_argument("task", help="copy, copy_rare, reverse, sort, add (tokens); sines, ar (vectors)")
    s.add_argument("--n", type=int, required=True, help="number of pairs")
    s.add_argument("--out", help="output file (.tsv or .jsonl); default: stdout")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    for key in ("min_len", "max_len", "vocab", "src_len", "tgt_len", "dim"):
        s.add_argument(
            f"--{key.replace('_', '-')}", dest=key, type=int, help="(default: the task's)"
        )


def _add_summary(sub: Commands) -> None:
    m = _command(sub, "summary", "parameter counts and shapes per component", cmd_summary)
    m.add_argument(
        "config",
        help="a run or checkpoint directory (its trained model), or a config (file or shipped "
        "name) whose data files or synth give the vocabularies and widths",
    )
    _add_set(m)
    m.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_demo(sub: Commands) -> None:
    d = _command(sub, "demo", "train the hybrid on a synthetic task and show results", cmd_demo)
    d.add_argument("--out", default="runs/demo", help="run directory")
    _add_set(d)
    d.add_argument("--json", action="store_true", help="print the final metrics as JSON")


def cmd_plot(args: argparse.Namespace) -> None:
    from hybridseq.curves import plot

    print(f"wrote {plot(args.run, args.out)}")


def _add_plot(sub: Commands) -> None:
    c = _command(sub, "plot", "draw a run's learning curves (from RUN/metrics.jsonl)", cmd_plot)
    c.add_argument("run", metavar="RUN", help="run directory")
    c.add_argument("--out", help="PNG to write (default: RUN/curves.png)")


def cmd_prepare(args: argparse.Namespace) -> None:
    from hybridseq.prepared import prepare

    cfg = api.as_config(args.config, args.set)
    prepare(cfg.data, args.out, log=lambda m: print(m, file=sys.stderr))
    print(f"then train with: --set data.train={args.out}")


def _add_prepare(sub: Commands) -> None:
    c = _command(sub, "prepare", "tokenise data.train once into memory-mapped arrays", cmd_prepare)
    c.add_argument("config", help="YAML config whose data section names the corpus")
    _add_set(c)
    c.add_argument("--out", required=True, help="the prepared directory (then data.train)")


CONFIG_HELP = "YAML config file, or a shipped config's name such as demo (hybridseq configs)"


def cmd_configs(args: argparse.Namespace) -> None:
    from hybridseq import shipped

    if args.action == "show":
        if not args.name:
            raise ValueError("configs show NAME: which config? (hybridseq configs lists them)")
        sys.stdout.write(shipped.path(args.name).read_text(encoding="utf-8"))
        return
    width = max(map(len, shipped.names()))
    for name in shipped.names():
        print(f"{name:<{width}}  {shipped.about(name)}")


def _add_configs(sub: Commands) -> None:
    c = _command(sub, "configs", "list the shipped example configs, or show one", cmd_configs)
    c.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    c.add_argument("name", nargs="?", help="the config to show, e.g. demo")


def _add_forecast(sub: Commands) -> None:
    fc = sub.add_parser(
        "forecast", help="train | forecast | evaluate on series in a CSV (hybridseq forecast -h)"
    )
    cli_forecast.add_commands(fc.add_subparsers(dest="forecast_command", required=True))


def _add_serve(sub: Commands) -> None:
    v = sub.add_parser("serve", help="serve a run, export or forecaster over HTTP (and a page)")
    v.add_argument("model", metavar="RUN_OR_EXPORT")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--max-batch", type=int, default=32, help="inputs per decoder call (1: off)")
    v.add_argument("--max-wait-ms", type=float, default=5.0, help="wait for a batch to fill")
    v.add_argument("--max-inputs", type=int, default=64, help="inputs per request")
    v.add_argument("--max-input-chars", type=int, default=256, help="characters per input")
    v.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body size")
    v.add_argument("--threads", type=int, default=1, help="the decoder's intra-op threads")
    v.set_defaults(func=cmd_serve)


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    run_command(build_parser().parse_args(argv), prog="hybridseq")


if __name__ == "__main__":
    main()
