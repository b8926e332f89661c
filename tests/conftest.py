"""Shared test helpers: the repository root, a copy of the workflow, tiny model/dataset specs."""

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
NO_SLURM = Path(__file__).parent / "no_slurm"


def pytest_collection_finish(session):
    """A run without `slurm` tests plans as a machine without SLURM does: its snakemake
    commands (the benchmarks' too) find tests/no_slurm's `scontrol`, which answers at once.
    Snakemake's SLURM plugin asks `scontrol show config` at every start: 9 s where a client is
    installed and no controller answers (after .ci/stop-slurm.sh, say), for each of the
    suite's many snakemake commands."""
    if not any(item.get_closest_marker("slurm") for item in session.items):
        os.environ["PATH"] = os.pathsep.join([str(NO_SLURM), os.environ.get("PATH", "")])


def copy_repo(target: Path) -> Path:
    """The workflow part of the checkout (what a user clones), without results."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake", "results")
    target.mkdir(parents=True)
    for name in ("Snakefile", "workflow", "src", "config", "envs", "profiles"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target


TINY_DATASET = {
    "source": "glyphs",
    "image_size": 8,
    "channels": 1,
    "mean": [0.5],
    "std": [0.5],
    "train_transform": "none",
    "split_seed": 0,
    "n_train_classes": None,
    "merge_threshold": 0.002,
}
TINY_CNN = {"arch": "small_cnn", "embedding_dim": 8, "widths": [4, 8], "weights": None}


@pytest.fixture
def tiny_spec():
    """A complete training spec for an 8x8 one-channel toy problem."""
    return {
        "dataset": dict(TINY_DATASET),
        "backbone": dict(TINY_CNN),
        "training": {
            "epochs": 2,
            "batch_size": 8,
            "num_workers": 0,
            "lr": 0.01,
            "weight_decay": 0.0001,
            "proxy_lr_multiplier": 10,
            "warmup_epochs": 0,
            "lr_decay_step": None,
            "lr_decay_gamma": 0.5,
            "grad_clip_value": 10,
            "pal_margin": 0.1,
            "pal_alpha": 32,
            "freeze_bn": False,
        },
        "defense": {"method": "vanilla"},
        "seed": 0,
    }


def toy_images(n_classes: int = 4, per_class: int = 8, size: int = 8, seed: int = 0):
    """uint8 images [N,1,size,size] whose class is a bright square at a class-specific place."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 60, (n_classes * per_class, 1, size, size), generator=generator)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    for index, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        half = size // 2
        images[index, 0, row * half : (row + 1) * half, col * half : (col + 1) * half] += 150
    return images.to(torch.uint8), labels
