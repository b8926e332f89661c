"""Atomic file writes, safe torch file reads and provenance, so an interrupted job never leaves
a half-written output, no file runs code when read, and every result says which config and
which package versions produced it."""

import errno
import hashlib
import json
import os
import pickle
import platform
import re
import sys
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


class UnreadableFileError(ValueError):
    """A file that is not what its name says (missing, truncated, foreign, or asking to run
    code when read); the message is one line: the file, what it should be, how to rebuild it."""


class DiskFullError(OSError):
    """A write that ran out of disk space; the message is one line naming the file."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` on a temporary file next to `path`, then rename it into place
    with the permissions the umask gives a new file (mkstemp's are 0600: results shared with
    a group would be unreadable to it). A full disk is a DiskFullError; nothing is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if out_of_space(error):
            raise DiskFullError(f"{path}: no space left on device; nothing was written") from None
        raise


def exit_in_one_line_on_bad_files(main: Callable[[], None]) -> None:
    """Run a step script's `main`; an unreadable, unsafe or missing input, or a full disk,
    ends it with one line naming the file (exit status 1) instead of a traceback."""
    try:
        main()
    except (UnreadableFileError, DiskFullError) as error:
        sys.exit(f"error: {error}")
    except FileNotFoundError as error:  # e.g. an input hashed for a progress manifest
        sys.exit(f"error: {error.filename}: no such file; rerun the job that writes it")


def current_umask() -> int:
    """The process umask (reading it means setting it: briefly 077, so a file another thread
    creates meanwhile is only more private)."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def out_of_space(error: BaseException | None) -> bool:
    """Whether `error` or an error behind it is ENOSPC (torch's zip writer reports a full disk
    as a RuntimeError raised while handling the OSError)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__ or error.__context__
    return False


def write_json(path: str | Path, data: dict) -> None:
    """Atomically write `data` as indented, key-sorted JSON."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def torch_save(path: str | Path, obj) -> None:
    """Atomically `torch.save` an object, through a file object: torch then names the archive
    inside the file 'archive', not after the random temporary name, so equal objects give
    byte-identical files."""
    import torch

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            torch.save(obj, file)

    atomic_write(path, write)


def torch_load(
    path: str | Path,
    what: str,
    rebuild: str,
    formats: tuple[str, ...] = (),
    error: type[Exception] = UnreadableFileError,
):
    """The object a torch file holds, read with `weights_only=True` (tensors and plain data
    only: a file asking to run code is refused before anything runs). A file that is missing,
    unreadable, unsafe or (with `formats`) not a dict marked with one of them raises `error`
    with one line: `path`, that it is no `what` and why, then `rebuild` (how to remake it)."""
    import torch

    corrupt = f"{path}: not a readable {what} (truncated or corrupt); {rebuild}"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}; {rebuild}") from None
    except pickle.UnpicklingError as refused:  # code to run, or bytes that are no pickle
        called = re.search(r"GLOBAL (\S+)", str(refused))
        if called is None:
            raise error(corrupt) from None
        raise error(
            f"{path}: not a safe {what}: it asks to call {called[1]}, which weights-only "
            f"loading refuses (nothing was run); {rebuild}"
        ) from None
    except OSError as unreadable:  # a directory, no permission
        raise error(f"{path}: cannot read {what} ({unreadable.strerror}); {rebuild}") from None
    except Exception:  # torch's zip reader and the unpickler on truncated or foreign bytes
        raise error(corrupt) from None
    if formats and not (isinstance(payload, dict) and payload.get("format") in formats):
        raise error(f"{path}: not a {what} ({' or '.join(formats)}); {rebuild}")
    return payload


def sha256sum(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in chunks (model files and sets are gigabytes)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


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
