"""Export to ONNX and decoding with onnxruntime: on small trained models of both families the
exported graphs give the torch decoders' tokens (greedy, beam, n best, attention) and vectors
(quantiles, covariates) within 1e-4, at batch sizes and lengths other than the traced ones;
``hybridseq.runtime`` decodes where torch cannot be imported; the CLI decodes an export as a
run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_dict

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402

from hybridseq import api, runtime  # noqa: E402
from hybridseq.cli import main  # noqa: E402
from hybridseq.export import export  # noqa: E402

TOKEN_RUNS = {
    # two layers: an (h, c) per layer in and out of the step; the encoder's final states
    "lstm_attention": {"enc_layers": 2, "dec_layers": 2},
    # multi-head attention queried by the new output (no input feeding), bridge init
    "hybrid": {"attention": "multihead", "attn_heads": 2, "input_feed": False},
}


def _train(out: Path, raw: dict) -> Path:
    raw["train"].update(eval_every=raw["train"]["max_steps"], threads=1)
    api.train(raw, out / "run", log=lambda m: None)
    export(out / "run", out / "export")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> a directory with a trained ``run`` and its ``export``, made when first used."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = _train(tmp_path_factory.mktemp(name), RECIPES[name]())
        return made[name]

    return get


def _tokens(family: str) -> dict:
    raw = tiny_train_dict("reverse", family, steps=40)
    raw["model"].update(TOKEN_RUNS[family])
    raw["decode"] = {"length_penalty": 0.6} if family == "hybrid" else {}
    return raw


def _quantiles() -> dict:
    raw = tiny_train_dict("sines", "hybrid", steps=30)
    raw["model"].update(quantiles=[0.1, 0.5, 0.9], attention="none", decoder_init="last")
    return raw


def _covariates(tmp: Path) -> dict:
    """Vectors with covariates known at each output step; a bidirectional LSTM encoder."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(120):
        s, t = int(rng.integers(3, 7)), int(rng.integers(2, 5))
        cov = rng.normal(size=(t, 2))
        src = rng.normal(size=(s, 2))
        tgt = src[-1:, :1] + cov[:, :1]
        lines.append(
            json.dumps({"source": src.tolist(), "target": tgt.tolist(), "covariates": cov.tolist()})
        )
    path = tmp / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    raw = tiny_train_dict("sines", "lstm_attention", steps=30)
    raw["data"] = {"train": str(path)}
    raw["model"].update(bidirectional=True)
    return raw


RECIPES = {
    "lstm_attention": lambda: _tokens("lstm_attention"),
    "hybrid": lambda: _tokens("hybrid"),
    "quantiles": _quantiles,
}


def _sources(n: int = 30, seed: int = 5) -> list[str]:
    """Token sources, some longer than any trained on (lengths 2-5), and an unknown symbol."""
    pairs = api.synth("reverse", n, seed=seed, min_len=2, max_len=9, vocab=6)
    return [s for s, _ in pairs] + ["a zz b"]


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
def test_greedy_and_beam_give_the_torch_tokens(runs, family):
    d = runs(family)
    torch_model, onnx_model = api.load(d / "run"), runtime.load(d / "export")
    sources = _sources()
    for beam in (1, 3):
        assert onnx_model.predict(sources, beam=beam) == torch_model.predict(sources, beam=beam)


def test_n_best_and_attention_follow_the_torch_decoder(runs):
    d = runs("lstm_attention")
    torch_model, onnx_model = api.load(d / "run"), runtime.load(d / "export")
    sources = _sources(8)
    for beam, n_best in ((1, 1), (4, 3)):
        want = torch_model.predict(sources, beam=beam, n_best=n_best, attention=True)
        got = onnx_model.predict(sources, beam=beam, n_best=n_best, attention=True)
        for w_hyps, g_hyps in zip(want, got, strict=True):
            assert [g.output for g in g_hyps] == [w.output for w in w_hyps]
            for g, w in zip(g_hyps, w_hyps, strict=True):
                assert g.score == pytest.approx(w.score, abs=1e-4)
                assert g.alignment.source == w.alignment.source
                assert g.alignment.output == w.alignment.output
                np.testing.assert_allclose(g.alignment.weights, w.alignment.weights, atol=1e-4)
                assert g.to_dict().keys() == w.to_dict().keys()


def test_quantile_rollout_matches_torch(runs):
    d = runs("quantiles")
    torch_model, onnx_model = api.load(d / "run"), runtime.load(d / "export")
    rng = np.random.default_rng(1)
    sources = [rng.normal(size=(n, 1)).astype(np.float32) for n in (6, 3, 9, 1)]
    want = torch_model.predict(sources, steps=5)
    got = onnx_model.predict(sources, steps=5)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape == (5, 1, 3)
        np.testing.assert_allclose(g, w, atol=1e-4)
    with pytest.raises(ValueError, match="token target"):
        onnx_model.predict(sources, steps=5, attention=True)


def test_covariates_rollout_matches_torch(tmp_path):
    d = _train(tmp_path, _covariates(tmp_path))
    torch_model, onnx_model = api.load(d / "run"), runtime.load(d / "export")
    rng = np.random.default_rng(2)
    sources = [rng.normal(size=(n, 2)) for n in (4, 7, 2)]
    covariates = [rng.normal(size=(t, 2)) for t in (3, 1, 6)]
    want = torch_model.predict(sources, covariates=covariates)
    got = onnx_model.predict(sources, covariates=covariates)
    for g, w, c in zip(got, want, covariates, strict=True):
        assert g.shape == w.shape == (len(c), 1)
        np.testing.assert_allclose(g, w, atol=1e-4)
    with pytest.raises(runtime.ExportError, match="needs covariates"):
        onnx_model.predict(sources)


def test_graphs_pass_the_checker_and_take_any_batch_and_length(runs):
    d = runs("lstm_attention") / "export"
    info = json.loads((d / "export.json").read_text())
    assert info["opset"] == 17 and "TorchScript" in info["exporter"]
    for graph in ("encoder.onnx", "decoder_step.onnx"):
        onnx.checker.check_model(str(d / graph), full_check=True)
    graphs = runtime.load(d).graphs
    for batch, length in ((1, 1), (5, 12)):
        src = np.random.default_rng(0).integers(4, 10, size=(batch, length))
        mask = np.ones((batch, length), dtype=bool)
        enc = graphs.encode(src, mask)
        assert enc.h.shape == (2, batch, 16)
        prev = np.full(batch, runtime.BOS_ID)
        out, h, c, attn = graphs.step(prev, enc.h, enc.c, enc)
        assert out.shape == (batch, info["model"]["vocab"]) and attn.shape == (batch, length)
        np.testing.assert_allclose(attn.sum(-1), 1.0, atol=1e-5)


def test_int8_export_decodes_close_to_float32(runs, tmp_path):
    d = runs("lstm_attention")
    export(d / "run", tmp_path / "int8", quantize="int8")
    info = json.loads((tmp_path / "int8" / "export.json").read_text())
    assert info["quantize"] == "int8"
    sources = _sources()
    same = sum(
        a == b
        for a, b in zip(
            runtime.load(tmp_path / "int8").predict(sources),
            runtime.load(d / "export").predict(sources),
            strict=True,
        )
    )
    assert same >= 0.8 * len(sources)


NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not available here")
        return None

sys.meta_path.insert(0, NoTorch())
from hybridseq import runtime

model = runtime.load(sys.argv[1])
print(model.predict(sys.argv[2:], beam=3)[0])
assert not any(m == "torch" or m.startswith("hybridseq.api") for m in sys.modules)
"""


def test_runtime_decodes_without_torch(runs):
    d = runs("hybrid")
    sources = _sources(3)
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(d / "export"), *sources],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == api.load(d / "run").predict(sources, beam=3)[0]


def _cli(capsys, *args: str) -> str:
    """Run ``hybridseq ARGS`` in this process; its standard output."""
    capsys.readouterr()
    main(list(args))
    return capsys.readouterr().out


def test_cli_export_then_predict_and_evaluate_as_the_run(runs, tmp_path, capsys):
    d = runs("lstm_attention")
    out = tmp_path / "exported"
    assert "encoder.onnx" in _cli(capsys, "export", str(d / "run"), "--out", str(out))
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(_sources(10)) + "\n")
    from_run = _cli(capsys, "predict", str(d / "run"), str(inputs), "--beam", "2")
    from_export = _cli(capsys, "predict", str(out), str(inputs), "--beam", "2")
    assert from_export == from_run and from_run.count("\n") == 11
    data = tmp_path / "test.tsv"
    pairs = api.synth("reverse", 20, seed=9, max_len=5, vocab=6)
    data.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    flags = ("--metrics", "exact_match,per", "--json")
    scored_run = json.loads(_cli(capsys, "evaluate", str(d / "run"), str(data), *flags))
    assert json.loads(_cli(capsys, "evaluate", str(out), str(data), *flags)) == scored_run
    with pytest.raises(SystemExit) as refused:
        _cli(capsys, "predict", str(out), str(inputs), "--dtype", "float16")
    assert refused.value.code == 2 and "is an export" in capsys.readouterr().err
