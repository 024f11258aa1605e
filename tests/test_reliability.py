"""No trained model is lost and every output lines up with its input (the hostile-user cases):
a run directory holding a run is not replaced without --resume or --overwrite, one run at a
time writes to it, a finished run resumed has nothing to do; SIGTERM and SIGHUP save ``last``
like Ctrl-C; runs killed with SIGKILL and resumed end bit for bit as a straight run; predict
gives one line per input line and streams them; files and stdin decode alike; user mistakes
are one line and exit status 2, leaving no ``.tmp`` behind; long lines are refused when the
data is read; numbers are read as written; a checkpoint that changed is refused."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_train_dict
from safetensors.torch import load_file

from hybridseq import api, checkpoint, cli, rundir
from hybridseq.checkpoint import CheckpointError, load_checkpoint, load_trainer_state
from hybridseq.cli import main
from hybridseq.config import load_config
from hybridseq.data import read_tsv


def _config(tmp_path: Path, task: str = "reverse", **train) -> str:
    raw = tiny_train_dict(task=task, steps=10)
    raw["train"].update(train)
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture(scope="module")
def token_run(tmp_path_factory) -> Path:
    """A tiny trained token model (reverse), shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("tokens")
    api.train(_config(tmp), tmp / "run", log=lambda m: None)
    return tmp / "run"


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("vectors")
    api.train(_config(tmp, task="sines"), tmp / "run", log=lambda m: None)
    return tmp / "run"


def _ok(capsys, *argv: str) -> str:
    main(list(argv))
    return capsys.readouterr().out


def _error(capsys, *argv: str) -> str:
    """Run a command that must fail as a user's mistake: exit 2, one line, no traceback."""
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hybridseq: error:") and err.count("\n") == 1, err
    return err


def _no_tmp(root: Path) -> None:
    assert not [p for p in root.rglob("*.tmp")], "a .tmp directory was left behind"


# --------------------------------------------------------------- 6-8: predict lines up


def test_predict_gives_one_line_per_input_line_blank_ones_too(token_run, tmp_path, capsys):
    inputs = tmp_path / "in.txt"
    inputs.write_text("a b c\nb a\n")
    alone = _ok(capsys, "predict", str(token_run), str(inputs)).split("\n")
    inputs.write_text("a b c\n\n  \nb a\n")
    out = _ok(capsys, "predict", str(token_run), str(inputs)).split("\n")
    # each output on its input's line (a tiny model's output may itself be empty)
    assert out == [alone[0], "", "", alone[1], ""]
    inputs.write_text("")
    assert _ok(capsys, "predict", str(token_run), str(inputs)) == ""


def test_predict_on_vectors_keeps_blank_lines(vector_run, tmp_path, capsys):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("[[0.1], [0.2]]\n\n[[0.3], [0.1]]\n")
    out = _ok(capsys, "predict", str(vector_run), str(inputs)).splitlines()
    assert len(out) == 3 and out[1] == "" and len(json.loads(out[2])) == 3


def test_predict_strips_a_bom_and_decodes_files_and_stdin_alike(
    token_run, tmp_path, capsys, monkeypatch
):
    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes(b"a b c\n")
    bom.write_bytes(b"\xef\xbb\xbfa b c\n")
    assert _ok(capsys, "predict", str(token_run), str(bom)) == _ok(
        capsys, "predict", str(token_run), str(plain)
    )
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"a b\n\xe9 a\n")
    assert f"{latin1}:2: not valid UTF-8" in _error(capsys, "predict", str(token_run), str(latin1))
    with latin1.open("rb") as stdin:
        monkeypatch.setattr("sys.stdin", open(stdin.fileno(), closefd=False))  # noqa: SIM115
        assert "<stdin>:2: not valid UTF-8" in _error(capsys, "predict", str(token_run))


def test_a_bom_is_dropped_by_the_data_and_series_readers(tmp_path):
    tsv, csv = tmp_path / "d.tsv", tmp_path / "s.csv"
    tsv.write_bytes(b"\xef\xbb\xbfa b\tb a\n")
    assert read_tsv(tsv) == [("a b", "b a")]
    csv.write_bytes(b"\xef\xbb\xbfid,time,target\nx,1,2.5\n")
    series = pytest.importorskip("hybridseq.series")
    assert series.read_series(csv).values["x"].tolist() == [[2.5]]


def test_predict_streams_chunks_and_opens_the_output_first(
    token_run, tmp_path, capsys, monkeypatch
):
    inputs, output = tmp_path / "in.txt", tmp_path / "out.txt"
    inputs.write_text("a b\nb c\nc a\na a\nb\n")
    seen: list[tuple[int, int]] = []  # (sources in the call, output bytes written before it)
    predict = api.Model.predict

    def spy(self, sources, **kw):
        seen.append((len(sources), output.stat().st_size))
        return predict(self, sources, **kw)

    monkeypatch.setattr(api.Model, "predict", spy)
    monkeypatch.setattr(cli, "PREDICT_CHUNK", 2)
    _ok(capsys, "predict", str(token_run), str(inputs), "--output", str(output))
    assert [n for n, _ in seen] == [2, 2, 1]
    assert seen[0][1] == 0 < seen[1][1] < seen[2][1]  # each chunk written before the next
    assert len(output.read_text().splitlines()) == 5
    seen.clear()
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    err = _error(capsys, "predict", str(token_run), str(inputs), "--output", f"{blocked}/o.txt")
    assert f"{blocked}/o.txt" in err and not seen  # refused before anything was decoded


# --------------------------------------------------------------- 9: one line, exit 2


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.threads=-1", "train.threads"),
        ("train.eval_max=0", "train.eval_max"),
        ("model.d_model=0", "model.d_model"),
        ("model.enc_layers=0", "model.enc_layers"),
        ("model.heads=0", "model.heads"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(tmp_path, capsys, override, named):
    err = _error(capsys, "train", _config(tmp_path), "--set", override, "--out", str(tmp_path))
    assert named in err and "must be >=" in err


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_predict_steps_must_be_positive(vector_run, tmp_path, capsys, steps):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("[[0.1], [0.2]]\n")
    err = _error(capsys, "predict", str(vector_run), str(inputs), "--steps", steps)
    assert "decode.steps" in err and steps in err


def test_paths_of_the_wrong_kind_are_one_line(token_run, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    err = _error(capsys, "train", _config(tmp_path), "--out", str(a_file))
    assert str(a_file) in err
    err = _error(capsys, "predict", str(token_run), str(tmp_path))
    assert f"{tmp_path}: is a directory" in err
    raw = tiny_train_dict()
    raw["data"] = {"train": str(tmp_path)}
    (tmp_path / "dir.yaml").write_text(yaml.safe_dump(raw))
    err = _error(capsys, "train", str(tmp_path / "dir.yaml"), "--out", str(tmp_path / "o"))
    assert str(tmp_path) in err


def test_a_full_disk_while_saving_is_one_line_and_leaves_no_tmp(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    err = _error(capsys, "train", _config(tmp_path), "--out", str(tmp_path / "run"))
    assert "No space left on device" in err and "cannot save the checkpoint" in err
    _no_tmp(tmp_path)


def test_an_unwritable_output_directory_is_one_line(tmp_path, capsys, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):  # tests may run as root, whom chmod does not stop
        if self.name.endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    err = _error(capsys, "train", _config(tmp_path), "--out", str(tmp_path / "run"))
    assert "Permission denied" in err
    _no_tmp(tmp_path)


def _copy(run: Path, tmp_path: Path, name: str = "ckpt") -> Path:
    return Path(shutil.copytree(run / "last", tmp_path / name))


def test_truncated_weights_and_trainer_state_are_named(token_run, tmp_path, capsys):
    ckpt = _copy(token_run, tmp_path)
    for name in ("model.safetensors", "trainer.pt"):
        data = (ckpt / name).read_bytes()
        (ckpt / name).write_bytes(data[: len(data) // 2])
    err = _error(capsys, "predict", str(ckpt), str(tmp_path / "none.txt"))
    assert f"{ckpt}/model.safetensors has changed" in err
    (ckpt / checkpoint.MANIFEST).unlink()  # a checkpoint from before manifests
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="trainer.pt: not a readable trainer state"):
        load_trainer_state(ckpt)


def test_a_vocabulary_of_another_model_is_refused(token_run, tmp_path, capsys):
    ckpt = _copy(token_run, tmp_path)
    codec = json.loads((ckpt / "codec.json").read_text())
    del codec["source"]["vocab"]["tokens"][-1]
    (ckpt / "codec.json").write_text(json.dumps(codec))
    assert "codec.json has changed" in _error(capsys, "predict", str(ckpt), "/dev/null")
    (ckpt / checkpoint.MANIFEST).unlink()
    err = _error(capsys, "predict", str(ckpt), "/dev/null")
    assert "codec.json and config.yaml disagree" in err and "src_vocab" in err


# --------------------------------------------------------------- 10: long lines, at load


def test_a_line_longer_than_max_len_is_refused_when_read(tmp_path, capsys):
    data = tmp_path / "train.tsv"
    long = " ".join(["a"] * 5000)
    data.write_text("a b\tb a\n" * 50 + f"{long}\tb\n" + "b a\ta b\n" * 50)
    raw = tiny_train_dict()
    raw["data"] = {"train": str(data)}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    err = _error(capsys, "train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"))
    assert f"{data}:51:" in err and "data.max_len (4,096)" in err
    assert not (tmp_path / "run" / "last").exists()  # refused before any step


# --------------------------------------------------------------- 11: numbers as written


def test_exponent_numbers_are_accepted_in_overrides_and_files(tmp_path):
    path = Path(_config(tmp_path))
    assert load_config(path, ["train.lr=1e-3"]).train.lr == 0.001
    text = path.read_text().replace("lr: 0.01", "lr: 5E-4")
    path.write_text(text.replace("max_steps: 10", "max_steps: 2e1"))
    cfg = load_config(path)
    assert cfg.train.lr == 0.0005 and cfg.train.max_steps == 20


# --------------------------------------------------------------- 12: checkpoints that lie


def test_an_edited_config_or_flipped_weights_are_refused(token_run, tmp_path, capsys):
    ckpt = _copy(token_run, tmp_path)
    text = (ckpt / "config.yaml").read_text()
    (ckpt / "config.yaml").write_text(text.replace("heads: 2", "heads: 4"))
    assert f"{ckpt}/config.yaml has changed" in _error(capsys, "predict", str(ckpt), "/dev/null")
    (ckpt / "config.yaml").write_text(text)
    weights = bytearray((ckpt / "model.safetensors").read_bytes())
    weights[-5] ^= 0x10
    (ckpt / "model.safetensors").write_bytes(bytes(weights))
    err = _error(capsys, "predict", str(ckpt), "/dev/null")
    assert f"{ckpt}/model.safetensors has changed" in err


def test_weights_of_another_shape_are_named(token_run, tmp_path):
    ckpt = _copy(token_run, tmp_path)
    (ckpt / checkpoint.MANIFEST).unlink()
    text = (ckpt / "config.yaml").read_text()
    (ckpt / "config.yaml").write_text(text.replace("emb_dim: 8", "emb_dim: 12"))
    with pytest.raises(CheckpointError, match=r"model.safetensors: tensor '.*' has shape"):
        load_checkpoint(ckpt)


# --------------------------------------------------------------- 1, 4, 5: the run directory


def _weights(ckpt: Path) -> dict:
    return load_file(str(ckpt / "model.safetensors"))


def test_an_existing_run_is_not_replaced_without_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = _config(tmp_path, keep_checkpoints=3)
    _ok(capsys, "train", cfg, "--out", str(out))
    best = (out / "best" / "model.safetensors").read_bytes()
    err = _error(capsys, "train", cfg, "--out", str(out), "--set", "train.max_steps=5")
    assert "already holds a training run (last: step 10, best: loss " in err
    assert ", exact_match " in err and "at step 10)" in err
    assert "--resume" in err and "--overwrite" in err
    assert (out / "best" / "model.safetensors").read_bytes() == best
    (out / "tensorboard" / "events.out.tfevents.old").write_text("the first run's curves")
    _ok(capsys, "train", cfg, "--out", str(out), "--overwrite", "--set", "train.max_steps=5")
    assert [p.name for p in checkpoint.step_checkpoints(out)] == ["step-5"]  # no mixed runs
    assert not (out / "tensorboard" / "events.out.tfevents.old").exists()  # nor mixed curves
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 5
    assert "both" in _error(capsys, "train", cfg, "--out", str(out), "--resume", "--overwrite")


def test_resuming_a_finished_run_has_nothing_to_do(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = _config(tmp_path)
    _ok(capsys, "train", cfg, "--out", str(out))
    before = {p.name: (p / "model.safetensors").read_bytes() for p in (out / "last", out / "best")}
    main(["train", cfg, "--out", str(out), "--resume", "--json"])
    said = capsys.readouterr()
    assert json.loads(said.out)["step"] == 10 and "nothing to do" in said.err
    after = {p.name: (p / "model.safetensors").read_bytes() for p in (out / "last", out / "best")}
    assert after == before
    assert torch.load(out / "last" / "trainer.pt", weights_only=True)["step"] == 10
    result = api.train(cfg, out, ["train.max_steps=12"], resume=True, log=lambda m: None)
    assert result.step == 12  # a raised limit trains on


def test_a_second_run_into_one_directory_is_refused_a_dead_ones_lock_taken_over(tmp_path, capsys):
    out, cfg = tmp_path / "run", _config(tmp_path)
    out.mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = {"pid": holder.pid, "host": socket.gethostname(), "started": "now"}
        (out / rundir.LOCK).write_text(json.dumps(lock | {"command": "hybridseq train a.yaml"}))
        err = _error(capsys, "train", cfg, "--out", str(out))
        assert f"in use by another training run (process {holder.pid}" in err
        assert "hybridseq train a.yaml" in err and not (out / "last").exists()
        shutil.copytree(_copy_run(tmp_path), out / "last")
        err = _error(capsys, "train", cfg, "--out", str(out), "--overwrite")
        assert "in use by another training run" in err and (out / "last").is_dir()
    finally:
        holder.kill()
        holder.wait()
    _ok(capsys, "train", cfg, "--out", str(out), "--overwrite")  # its holder is gone
    assert (out / "last").is_dir() and not (out / rundir.LOCK).exists()


def _copy_run(tmp_path: Path) -> Path:
    """A checkpoint to stand for another run's ``last``."""
    api.train(_config(tmp_path, max_steps=2, eval_every=2), tmp_path / "other", log=lambda m: None)
    return tmp_path / "other" / "last"


# --------------------------------------------------------------- 3: SIGKILL at random moments


def _train_process(cfg: str, out: Path) -> subprocess.Popen:
    flag = "--resume" if (out / "last").is_dir() else "--overwrite"  # nothing saved yet: anew
    command = [sys.executable, "-m", "hybridseq.cli", "train", cfg, "--out", str(out), flag]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def _training(proc: subprocess.Popen) -> None:
    """Wait until ``proc`` starts its steps (it logs its parameter count just before)."""
    for line in proc.stdout:
        if b" parameters, " in line:
            return


def test_sigkill_at_random_moments_then_resume_equals_a_straight_run(tmp_path):
    """``kills`` times, the run is killed with SIGKILL at a random moment (seeded) after it
    starts, and resumed; the weights it ends with equal those of a run never killed, bit for
    bit (and a killed run's lock is taken over each time)."""
    kills, rng = 5, random.Random(25)
    cfg = _config(tmp_path, max_steps=80, eval_every=4, threads=1)
    straight = _train_process(cfg, tmp_path / "straight")
    _training(straight)
    start = time.monotonic()
    assert straight.wait(timeout=300) == 0, straight.stdout.read().decode()
    span = (time.monotonic() - start) / kills  # a kill lands 0-1.5 of a fifth of a run later
    out, steps = tmp_path / "killed", []
    for _ in range(kills):
        proc = _train_process(cfg, out)
        _training(proc)
        time.sleep(rng.uniform(0.0, 1.5) * span)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if (out / "last").is_dir():
            steps.append(torch.load(out / "last" / "trainer.pt", weights_only=True)["step"])
    assert any(0 < s < 80 for s in steps), steps  # kills landed mid-run
    final = _train_process(cfg, out)
    assert final.wait(timeout=300) == 0, final.stdout.read().decode()
    assert torch.load(out / "last" / "trainer.pt", weights_only=True)["step"] == 80
    w1, w2 = _weights(tmp_path / "straight" / "last"), _weights(out / "last")
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    _no_tmp(out)


def test_a_forecaster_run_is_guarded_and_its_output_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("statsmodels")
    from hybridseq.forecast import fit_forecaster

    csv, out = tmp_path / "series.csv", tmp_path / "fc"
    rows = [f"{s},{t},{50 + 10 * ((t * 7) % 5) + k}" for k, s in enumerate("ab") for t in range(30)]
    csv.write_text("id,time,target\n" + "\n".join(rows) + "\n")
    model = {"family": "hybrid", "d_model": 16, "heads": 2, "ff_dim": 16, "enc_layers": 1}
    train = {"batch_size": 16, "max_steps": 4, "eval_every": 4, "progress": False, "threads": 1}
    config = {"forecast": {"horizon": 3, "lookback": 6}, "model": model, "train": train}
    fit_forecaster(csv, config, out, log=lambda m: None)
    fitted = (out / "forecast.json").read_text()
    with pytest.raises(rundir.RunDirError, match="already holds a training run"):
        fit_forecaster(csv, config, out, log=lambda m: None)
    assert (out / "forecast.json").read_text() == fitted  # refused before it was replaced
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    err = _error(capsys, "forecast", "forecast", str(out), str(csv), "--output", f"{blocked}/f.csv")
    assert str(blocked) in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_last_and_exit_like_ctrl_c(tmp_path, signum):
    out = tmp_path / "run"
    proc = _train_process(_config(tmp_path, max_steps=100_000, eval_every=100_000), out)
    _training(proc)
    time.sleep(0.5)
    proc.send_signal(signum)
    said = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 128 + signum, said
    step = torch.load(out / "last" / "trainer.pt", weights_only=True)["step"]
    assert step > 0 and f"stopped at step {step}" in said
