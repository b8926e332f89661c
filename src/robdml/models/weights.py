"""torchvision's ImageNet weights as files: fetched once where there is network (rule
fetch_weights, a local rule: the submit host), only read by training jobs (compute nodes are
often offline).

A backbone's `weights` names a member of torchvision's weights enum for its arch
(`torchvision.models.get_model_weights(arch)[name]`, e.g. IMAGENET1K_V1). Its file,
{weights_root}/{arch}/{name}.pth, holds the bytes at the member's url, i.e. exactly the state
dict torchvision would load. torchvision's file names carry the first hex digits of the
file's sha256 (resnet50-0676ba61.pth); like torch.hub's `check_hash`, a file whose sha256
does not start with them is refused. A copy already in torch.hub's cache
($TORCH_HOME/hub/checkpoints/<file name>, default ~/.cache/torch) is used instead of
downloading, so a machine that has loaded those weights before needs no network.
"""

import logging
import re
import shutil
import sys
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlparse

from robdml.data.download import ChecksumError, DownloadError
from robdml.io import atomic_write, sha256sum, torch_load

log = logging.getLogger(__name__)

HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: resnet50-0676ba61.pth


class WeightsError(ValueError):
    """Weights torchvision does not have, or a url whose file name carries no hash."""


class MissingWeightsError(FileNotFoundError):
    """A job that needs a weights file found none (training jobs never download)."""


def fetch_command(arch: str, name: str, path: str | Path) -> str:
    """How to fetch one weights file, for messages."""
    return (
        "`snakemake --cores 1 fetch_weights` (with the run's --configfile's) or "
        f"`python src/fetch_weights.py --arch {arch} --weights {name} --out {path}`"
    )


def torchvision_weights(arch: str, name: str):
    """torchvision's weights `name` of `arch` (a WeightsEnum member: url, meta); WeightsError
    names what exists. DEFAULT is refused: its meaning changes with torchvision's version."""
    import torchvision

    try:
        members = torchvision.models.get_model_weights(arch)
    except ValueError:
        raise WeightsError(f"{arch}: torchvision has no ImageNet weights for this arch") from None
    known = [member for member in members.__members__ if member != "DEFAULT"]
    if name not in known:
        raise WeightsError(
            f"{arch}: torchvision {torchvision.__version__} has no weights {name!r} "
            f"(known: {', '.join(known)})"
        )
    return members[name]


def hash_prefix(url: str) -> str:
    """The sha256 prefix in the file name of `url` (torch.hub's convention)."""
    match = HASH_IN_NAME.search(Path(urlparse(url).path).name)
    if match is None:
        raise WeightsError(f"{url}: its file name carries no sha256 prefix to check it against")
    return match.group(1)


def check_hash_prefix(path: str | Path, prefix: str, shown_as: str) -> None:
    """ChecksumError (naming `shown_as`) unless the sha256 of `path` starts with `prefix`."""
    actual = sha256sum(path)
    if not actual.startswith(prefix):
        raise ChecksumError(
            f"{shown_as}: sha256 is {actual}, expected it to start with {prefix} (the hash in "
            "torchvision's file name)"
        )


def hub_checkpoints() -> Path:
    """torch.hub's cache of downloaded weights: $TORCH_HOME/hub/checkpoints."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch_weights(arch: str, name: str, destination: str | Path) -> None:
    """Write torchvision's weights `name` of `arch` to `destination` (a verified copy)."""
    fetch_file(torchvision_weights(arch, name).url, destination, hub_checkpoints())


def fetch_file(url: str, destination: str | Path, cache: str | Path) -> None:
    """Copy `<cache>/<file name of url>` if it exists, else download `url`; either way the
    bytes are checked against the hash in the file name before `destination` appears (a
    temporary file next to it, renamed): a failure leaves no `destination`."""
    destination = Path(destination)
    prefix = hash_prefix(url)
    cached = Path(cache) / Path(urlparse(url).path).name
    if not cached.is_file():
        log.info("downloading %s (not in torch.hub's cache %s)", url, cached.parent)
        download_checked(url, destination, prefix)
        log.info("%s: sha256 starts with %s, as the file name says", destination, prefix)
        return
    log.info("copying %s (torch.hub's cache) to %s", cached, destination)

    def copy_checked(temporary: Path) -> None:
        shutil.copyfile(cached, temporary)
        check_hash_prefix(temporary, prefix, f"{cached} (torch.hub's cache, not copied)")

    atomic_write(destination, copy_checked)
    log.info("%s: sha256 starts with %s, as the file name says", destination, prefix)


def download_checked(url: str, destination: Path, prefix: str) -> None:
    """torch.hub's download (a temporary file next to `destination`, renamed once its sha256
    starts with `prefix`, deleted otherwise), its errors as the project's one-line ones. It
    neither retries nor resumes (robdml.data.download does, for the datasets' archives): a
    weights file is at most a few hundred MB, and a failed fetch_weights job is run again."""
    import torch

    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(
            url, str(destination), hash_prefix=prefix, progress=sys.stderr.isatty()
        )
    except RuntimeError as error:  # the only RuntimeError it raises: a wrong sha256
        raise ChecksumError(
            f"{destination} (downloaded from {url}, not kept): sha256 expected to start with "
            f"{prefix} (the hash in torchvision's file name); torch.hub: {error}"
        ) from None
    except (HTTPException, OSError) as error:  # OSError covers URLError, HTTPError, timeouts
        raise DownloadError(f"{url}: {error}") from error


def check_weights_file(backbone: dict, path: str | Path | None) -> None:
    """For a backbone with ImageNet `weights`: they exist in torchvision and `path` is a file
    (else WeightsError / MissingWeightsError); a job checks this before any work."""
    if backbone.get("weights") is None:
        return
    arch, name = backbone["arch"], backbone["weights"]
    torchvision_weights(arch, name)
    if path is None:
        raise MissingWeightsError(
            f"{arch}: the backbone starts from torchvision's {name} weights but no weights file "
            "was given (src/train.py --weights; rule train passes "
            f"{{weights_root}}/{arch}/{name}.pth)"
        )
    if not Path(path).is_file():
        raise MissingWeightsError(
            f"{path}: no such weights file ({arch} {name}, which the backbone starts from); "
            "training jobs never download: fetch it once on a machine with network (e.g. the "
            f"login node) with {fetch_command(arch, name, path)}"
        )


def read_weights(arch: str, name: str, path: str | Path | None) -> dict:
    """The state dict in the weights file `path` (fetched beforehand: this never downloads);
    a missing file is a MissingWeightsError saying how to fetch it."""
    check_weights_file({"arch": arch, "weights": name}, path)
    rebuild = f"delete it and fetch it again: {fetch_command(arch, name, path)}"
    return torch_load(path, f"{arch} {name} weights file", rebuild, error=WeightsError)
