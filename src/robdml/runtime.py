"""Process set-up shared by every step: threads, device, seeds and determinism."""

import fcntl
import logging
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

# Lock files of the GPU slots this process holds: kept open (so locked) until it exits.
_HELD_GPU_LOCKS: list = []


def setup(threads: int, device: str, seed: int) -> torch.device:
    """Fix threads and seeds, make CPU kernels deterministic and pick the device.

    With `device: cuda`, the job uses a GPU it can see. Under SLURM (`gpu=1`) that is the
    one GPU SLURM gave it. When it sees several (a local `snakemake --resources gpu=N` run
    on a multi-GPU workstation), `claim_gpu` picks one no other job of ours is using.
    """
    torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(seed)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "config says device: cuda, but no CUDA device is visible; "
                "set device: cpu in the config or run on a GPU node"
            )
        index = claim_gpu(torch.cuda.device_count())
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def claim_gpu(n_devices: int, lock_dir: str | Path | None = None) -> int:
    """Index (among the visible devices) of a GPU that no other process of ours holds.

    Snakemake counts GPUs on a local run (`--resources gpu=N`) but does not say which one a
    job should use, so each GPU job takes an exclusive `flock` on one lock file per GPU and
    keeps it until it exits (the kernel releases it even on SIGKILL). Lock files live in
    `$ROBDML_GPU_LOCK_DIR` (default: <tmp>/robdml-gpu-locks) and are named after the
    physical GPU (its `CUDA_VISIBLE_DEVICES` entry, else its index), so jobs that see
    different subsets of the GPUs still agree. With one visible device (SLURM, or
    `CUDA_VISIBLE_DEVICES` set per process) there is nothing to choose: 0. When every slot
    is taken (more concurrent GPU jobs than GPUs), the job shares one and says so.
    """
    if n_devices <= 1:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    names = [name.strip() for name in visible.split(",") if name.strip()]
    if len(names) < n_devices:
        names = [str(index) for index in range(n_devices)]
    if lock_dir is None:
        lock_dir = os.environ.get("ROBDML_GPU_LOCK_DIR") or Path(
            tempfile.gettempdir(), "robdml-gpu-locks"
        )
    lock_dir = Path(lock_dir)
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log.warning("cannot create GPU lock dir %s (%s); using GPU 0", lock_dir, error)
        return 0
    for index in range(n_devices):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in names[index])
        path = lock_dir / f"gpu-{safe}.lock"
        try:
            handle = open(path, "a+")  # stays open: it holds the lock
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _HELD_GPU_LOCKS.append(handle)
        log.info("using GPU %d of %d (CUDA_VISIBLE_DEVICES=%s)", index, n_devices, visible)
        return index
    index = os.getpid() % n_devices
    log.warning(
        "all %d GPUs are held by other jobs (more concurrent GPU jobs than GPUs: run "
        "`snakemake --resources gpu=N` with N <= %d); sharing GPU %d",
        n_devices,
        n_devices,
        index,
    )
    return index


def release_gpus() -> None:
    """Give back the GPU slots this process holds (normally they last until it exits)."""
    while _HELD_GPU_LOCKS:
        _HELD_GPU_LOCKS.pop().close()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from integer keys, e.g. (seed, epoch): resuming at an epoch
    replays exactly the randomness an uninterrupted run would have drawn."""
    mixed = 0
    for key in keys:
        mixed = (mixed * 1_000_003 + int(key)) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)
