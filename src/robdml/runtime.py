"""Process set-up shared by every step: threads, device, seeds and determinism."""

import os
import random

import numpy as np
import torch


def setup(threads: int, device: str, seed: int) -> torch.device:
    """Fix threads and seeds, make CPU kernels deterministic and pick the device.

    With `device: cuda`, the job uses the first GPU it can see: SLURM and
    `CUDA_VISIBLE_DEVICES` decide which physical GPU that is.
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
        return torch.device("cuda", 0)
    return torch.device("cpu")


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
