"""Toy training steps of the defense tests: tiny members on 1x8x8 images, every registered
method's defaults as demo_full.yaml trains them."""

import copy

import torch

from conftest import REPO, TINY_CNN, TINY_DATASET
from robdml.config import load_schema, read_config, validate_config
from robdml.defenses import DEFENSES, Defense, StepContext, build_defense
from robdml.losses import proxy_anchor_loss
from robdml.models import build_members, member_generator
from robdml.specs import defense_spec, train_spec

N_CLASSES, PER_CLASS = 4, 6


def every_method_config() -> dict:
    """demo_full.yaml with one named entry per registered defense method, all selected: the
    shared tests cover every method a module declares, whatever the shipped configs run."""
    config = read_config(REPO / "config" / "demo_full.yaml")
    config["defenses"] |= {method: {"method": method} for method in DEFENSES}
    config["run"]["defenses"] = list(dict.fromkeys([*config["run"]["defenses"], *DEFENSES]))
    return validate_config(config, load_schema(), "demo_full.yaml + every method")


DEMO_FULL = every_method_config()


RECIPE = {**train_spec(DEMO_FULL, "glyphs", "cnn", "vanilla", 0)["training"], "epochs": 1,
          "batch_size": 16}  # fmt: skip


def demo_defense(name: str) -> dict:
    """A defense (a named entry or a method's defaults) as demo_full.yaml trains it on glyphs
    (the recipe's training attack filled in)."""
    return defense_spec(DEMO_FULL, "glyphs", name)


def toy_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """PER_CLASS images of each of N_CLASSES classes, in [0, 1]."""
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(N_CLASSES * PER_CLASS, 1, 8, 8, generator=rng)
    return images, torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)


def toy_step(n_members: int, seed: int = 0) -> StepContext:
    """Fresh members and Proxy Anchor losses seeded as the trainer seeds them."""
    members = build_members({"seed": 0, "backbone": TINY_CNN, "dataset": TINY_DATASET}, n_members)
    pal_losses = [
        proxy_anchor_loss(
            N_CLASSES, TINY_CNN["embedding_dim"], RECIPE, member_generator(0, index, "proxies")
        )
        for index in range(n_members)
    ]
    return StepContext(members, pal_losses, torch.Generator().manual_seed(seed))


def replay(step: StepContext, seed: int = 0) -> StepContext:
    """An independent copy of `step` (weights, BatchNorm statistics, proxies, generator)."""
    return StepContext(
        copy.deepcopy(step.members),
        copy.deepcopy(step.pal_losses),
        torch.Generator().manual_seed(seed),
    )


def eat(**overrides) -> Defense:
    """EAT with the demo defaults and `overrides`."""
    return build_defense({**demo_defense("eat"), **overrides})
