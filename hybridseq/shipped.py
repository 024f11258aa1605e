"""The example configs that ship inside the package (``hybridseq/configs/*.yaml``), so that an
installed wheel has them too: ``hybridseq configs`` lists them, ``hybridseq configs show NAME``
prints one, and wherever a config path is taken (``train``, ``summary``, ``forecast train
--config``, ``hybridseq.train``) a shipped name such as ``demo`` stands for its file when no
file of that name exists.
"""

from __future__ import annotations

from pathlib import Path

from hybridseq.config import ConfigError

DIRECTORY = Path(__file__).resolve().parent / "configs"
ABOUT_CHARS = 100  # a listing's description is cut to this


def names() -> list[str]:
    """The shipped configs' names (their file names without ``.yaml``), sorted."""
    return sorted(p.stem for p in DIRECTORY.glob("*.yaml"))


def path(name: str) -> Path:
    """The file of the shipped config ``name`` (``demo`` or ``demo.yaml``); a ConfigError
    listing the names for any other."""
    stem = name.removesuffix(".yaml")
    found = DIRECTORY / f"{stem}.yaml"
    if "/" in stem or not found.is_file():
        raise ConfigError(
            f"no shipped config {name!r} (shipped: {', '.join(names())}; "
            "hybridseq configs lists them)"
        )
    return found


def resolve(config: str | Path) -> Path:
    """A config argument as a file: the path itself where it exists, else the shipped config
    of that name (``demo``, ``demo.yaml``); a ConfigError where neither is there."""
    given = Path(config)
    if given.exists():
        return given
    if len(given.parts) == 1 and given.suffix in ("", ".yaml"):
        try:
            return path(given.name)
        except ConfigError as e:
            raise ConfigError(f"config file not found: {given}; {e}") from None
    hint = f" (shipped as {given.stem!r})" if given.stem in names() else ""
    raise ConfigError(f"config file not found: {given}{hint}")


def about(name: str) -> str:
    """The first sentence of a shipped config's leading comment (cut to ``ABOUT_CHARS``)."""
    lines = []
    for line in path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = text.find(". ")
    text = text if end < 0 else text[: end + 1]
    return text if len(text) <= ABOUT_CHARS else text[: ABOUT_CHARS - 3].rstrip() + "..."
