"""The command line end to end (synth -> train -> predict -> evaluate) and its error messages:
every user mistake exits with status 2 and one line naming the file and line, the key, or the
expected vs actual shape."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import tiny_train_dict

from hybridseq.checkpoint import write_manifest
from hybridseq.cli import main
from hybridseq.data import DataError


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hybridseq.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _config(tmp_path, data: dict, **train) -> str:
    raw = tiny_train_dict(steps=30)
    raw["data"] = data
    raw["train"].update(train)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_train_predict_evaluate_end_to_end(tmp_path):
    train_tsv, valid_tsv = tmp_path / "train.tsv", tmp_path / "valid.tsv"
    assert (
        run(
            "synth",
            "reverse",
            "--n",
            "300",
            "--out",
            str(train_tsv),
            "--max-len",
            "5",
            "--vocab",
            "6",
        ).returncode
        == 0
    )
    run(
        "synth",
        "reverse",
        "--n",
        "30",
        "--out",
        str(valid_tsv),
        "--seed",
        "1",
        "--max-len",
        "5",
        "--vocab",
        "6",
    )
    data = {"train": str(train_tsv), "valid": str(valid_tsv)}
    cfg = _config(tmp_path, data)
    out = tmp_path / "run"
    r = run("train", cfg, "--out", str(out), "--set", "train.max_steps=30", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["step"] == 30

    r = run("predict", str(out), "--beam", "2", stdin="a b c\nz z q\n")  # z, q: unknown symbols
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2

    r = run("predict", str(out), "--ensemble", str(out / "last"), stdin="a b c\n")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1

    r = run("evaluate", str(out), str(valid_tsv), "--metrics", "exact_match,wer,per,bleu", "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert set(metrics) == {"exact_match", "wer", "per", "bleu"}
    assert metrics["wer"] == pytest.approx(100 * (1 - metrics["exact_match"]))


def test_summary_reports_the_seed_counts():
    r = run("summary", "seed_lstm_attention", "--json")
    assert json.loads(r.stdout)["parameters"] == 10_467_304
    comps = json.loads(run("summary", "seed_hybrid", "--json").stdout)["components"]
    assert comps["encoder"]["parameters"] == 18_914_304
    assert comps["decoder"]["parameters"] == 4_202_496


def _error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hybridseq: error:") and "Traceback" not in err
    return err


def test_malformed_data_line_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a b\tb a\nc d\n")
    err = _error(capsys, "train", _config(tmp_path, {"train": str(bad)}), "--out", str(tmp_path))
    assert f"{bad}:2:" in err and "expected 2 tab-separated columns" in err
    bad.write_text("a b\tb a\n\t c\n")
    err = _error(capsys, "train", _config(tmp_path, {"train": str(bad)}), "--out", str(tmp_path))
    assert f"{bad}:2:" in err and "empty source" in err


def test_debug_variable_shows_the_error_itself(tmp_path, monkeypatch):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a b\tb a\nc d\n")
    monkeypatch.setenv("HYBRIDSEQ_DEBUG", "1")
    with pytest.raises(DataError, match="expected 2 tab-separated columns"):
        main(["train", _config(tmp_path, {"train": str(bad)}), "--out", str(tmp_path)])


def test_unknown_config_key_is_named(tmp_path, capsys):
    cfg = _config(tmp_path, {"synth": {"task": "copy"}})
    err = _error(capsys, "train", cfg, "--set", "train.batchsize=8", "--out", str(tmp_path))
    assert "train.batchsize" in err and "batch_size" in err


def test_cuda_without_a_gpu_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # as on a machine without one
    cfg = _config(tmp_path, {"synth": {"task": "copy"}})
    err = _error(capsys, "train", cfg, "--set", "train.device=cuda", "--out", str(tmp_path))
    assert "train.device: cuda" in err and "no CUDA device" in err


def test_vector_width_and_nan_are_refused_with_position(tmp_path, capsys):
    good = '{"source": [[1, 2], [3, 4]], "target": [[1], [2]]}\n'
    wide = '{"source": [[1, 2, 3]], "target": [[1]]}\n'
    nan = '{"source": [[1, 2]], "target": [[1], [NaN]]}\n'
    path = tmp_path / "v.jsonl"
    path.write_text(good + wide)
    err = _error(capsys, "train", _config(tmp_path, {"train": str(path)}), "--out", str(tmp_path))
    assert f"{path}:2:" in err and "width 3, expected 2" in err
    path.write_text(good + nan)
    err = _error(capsys, "train", _config(tmp_path, {"train": str(path)}), "--out", str(tmp_path))
    assert f"{path}:2:" in err and "row 1, column 0 is nan" in err


def test_missing_checkpoint_is_named(tmp_path, capsys):
    err = _error(capsys, "predict", str(tmp_path / "nope"))
    assert "checkpoint not found" in err and "nope" in err


def test_predict_on_vectors_checks_width(tmp_path, capsys):
    cfg = _config(
        tmp_path,
        {
            "synth": {
                "task": "sines",
                "n_train": 50,
                "n_valid": 5,
                "n_test": 5,
                "src_len": 6,
                "tgt_len": 3,
            }
        },
    )
    out = tmp_path / "run"
    assert run("train", cfg, "--out", str(out), "--set", "train.max_steps=5").returncode == 0
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("[[0.1], [0.2], [0.3]]\n")
    r = run("predict", str(out), str(inputs), "--steps", "4")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 4
    inputs.write_text("[[0.1, 0.5], [0.2, 0.1]]\n")
    err = _error(capsys, "predict", str(out), str(inputs))
    assert "expected vectors of shape (length, 1), got (2, 2)" in err


def test_ensemble_members_must_share_a_codec(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", _config(tmp_path, {"synth": {"task": "copy"}}), "--out", str(out)])
    other = tmp_path / "other"
    shutil.copytree(out / "best", other)
    codec = json.loads((other / "codec.json").read_text())
    tokens = codec["target"]["vocab"]["tokens"]
    tokens[4], tokens[5] = tokens[5], tokens[4]  # two symbols swap ids
    (other / "codec.json").write_text(json.dumps(codec))
    write_manifest(other)  # as if saved so: a checkpoint whose codec differs, not a tampered one
    err = _error(capsys, "predict", str(out), "--ensemble", str(other))
    assert str(other) in err and "members must share one codec" in err
