"""Atomic file writes and provenance, so an interrupted job never leaves a half-written output
and every result says which config and which package versions produced it."""

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROVENANCE_PACKAGES = (
    "robdml",
    "torch",
    "torchvision",
    "numpy",
    "scikit-learn",
    "pytorch-metric-learning",
    "pandas",
    "snakemake",
)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` on a temporary file next to `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: dict) -> None:
    """Atomically write `data` as indented, key-sorted JSON."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def torch_save(path: str | Path, obj) -> None:
    """Atomically `torch.save` an object."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def spec_hash(spec: dict) -> str:
    """Short stable hash of a JSON-able spec: identifies the exact configuration of a result."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on, plus the Python version (read once per
    process: every metrics record carries them)."""
    return dict(installed_versions())


@cache
def installed_versions() -> tuple[tuple[str, str], ...]:
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return tuple(versions.items())
