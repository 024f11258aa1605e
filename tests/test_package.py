"""The built wheel: it holds every module, the shipped configs and the server's page, and the
package it unpacks to works away from the repository (a few seconds: a copy of the source is
built with setuptools' PEP 517 backend, with no dependency resolution)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "hybridseq"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of pyproject.toml, README.md and hybridseq/ (the checkout is left
    as it is: no build/ or dist/ written there)."""
    pytest.importorskip("setuptools")
    work = tmp_path_factory.mktemp("build")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    ignore = lambda _, names: [n for n in names if n == "__pycache__"]  # noqa: E731
    shutil.copytree(SOURCES, src / "hybridseq", ignore=ignore)
    build = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", build, str(work / "dist")],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = (work / "dist").glob("hybridseq-*.whl")
    return found


def test_the_wheel_holds_modules_configs_and_web_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("*.py", "configs/*.yaml", "web/*"):
        expected = {f"hybridseq/{p.relative_to(SOURCES)}" for p in SOURCES.glob(kind)}
        assert expected and expected <= names, sorted(expected - names)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "hybridseq = hybridseq.cli:main" in entry.decode()


def test_the_unpacked_package_finds_its_configs_away_from_the_repository(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import hybridseq; "
        "assert hybridseq.__file__.startswith(sys.argv[1]), hybridseq.__file__; "
        "from hybridseq.cli import main; main(sys.argv[2:])"
    )
    run = lambda *argv: subprocess.run(  # noqa: E731
        [sys.executable, "-c", script, str(site), *argv],
        cwd=tmp_path,  # no configs/ here: the names must resolve inside the package
        capture_output=True,
        text=True,
        timeout=120,
    )
    listed = run("configs")
    assert listed.returncode == 0, listed.stderr
    assert "demo" in listed.stdout and "g2p_lstm_attention" in listed.stdout
    shown = run("configs", "show", "demo")
    assert shown.stdout == (SOURCES / "configs" / "demo.yaml").read_text()
    summary = run("summary", "forecast_hybrid")  # a shipped name where --config takes a file
    assert "117,377" in summary.stdout, summary.stderr
