"""The shared training loop: every defense runs inside it.

AdamW with three parameter groups (trunks, heads, proxies at lr x multiplier), warm-up epochs
that train only heads and proxies, step decay, BatchNorm freezing, gradient value clipping,
batches sampled as the defense asks (`robdml.data.batches`: random or class pairs), a
checkpoint after every epoch and exact resume (all randomness of an epoch is drawn from a
generator seeded by (seed, epoch)).
"""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from robdml.data.batches import epoch_batches
from robdml.defenses import Defense, StepContext, build_defense
from robdml.fast_path import FastPath, configure_fast_path
from robdml.io import UnreadableFileError, spec_hash, torch_load, torch_save
from robdml.losses import proxy_anchor_loss
from robdml.models import build_members, member_generator, save_model
from robdml.runtime import generator

log = logging.getLogger(__name__)
# one line per epoch in the job's log; benchmarks/dag.py reads the seconds of work from it
EPOCH_LINE = "epoch %d: mean loss %.4f, %.2f s"


@dataclass
class Run:
    """One training run's state: the defense, its members and their Proxy Anchor losses, the
    optimiser, each member's sample mask, and the epochs done so far (`history`)."""

    defense: Defense
    members: list[nn.Module]
    pal_losses: list[nn.Module]
    optimizer: torch.optim.Optimizer
    masks: torch.Tensor
    history: list[dict] = field(default_factory=list)


def train(
    spec: dict,
    train_set: Dataset,
    model_path: str | Path,
    checkpoint_path: str | Path,
    device: torch.device,
    weights_file: str | Path | None = None,
    fast_path: FastPath | None = None,
) -> list[dict]:
    """Train the model described by `spec` on `train_set` (items: float image, label 0..C-1);
    a backbone with ImageNet weights starts from `weights_file` (robdml.models.weights).
    `fast_path` (None: its defaults for `device`) says how to run on a GPU.

    Resumes from `checkpoint_path` when it holds an unfinished run of the same spec; writes
    `model_path` atomically at the end and removes the checkpoint. Returns the per-epoch history.
    """
    recipe = spec["training"]
    fast_path = fast_path or configure_fast_path(device)
    run = build_run(spec, train_set.labels, device, weights_file, fast_path)
    checkpoint_path = Path(checkpoint_path)
    resume(run, checkpoint_path, spec)
    sampler = EpochBatches()
    workers = recipe["num_workers"]
    loader = DataLoader(
        train_set, batch_sampler=sampler, num_workers=workers, **fast_path.loader_options(workers)
    )
    for epoch in range(len(run.history), recipe["epochs"]):
        started = time.perf_counter()
        loss = train_epoch(run, spec, loader, sampler, train_set.labels, epoch, fast_path)
        run.history.append({"epoch": epoch + 1, "loss": loss})
        seconds = time.perf_counter() - started  # in the log, not the model file (reproducible)
        log.info(EPOCH_LINE, epoch + 1, loss, seconds)
        save_checkpoint(checkpoint_path, spec, run, epoch)
    save_model(model_path, spec, [member.cpu() for member in run.members], run.history)
    checkpoint_path.unlink(missing_ok=True)
    return run.history


def build_run(
    spec: dict,
    labels: torch.Tensor,
    device: torch.device,
    weights_file: str | Path | None,
    fast_path: FastPath,
) -> Run:
    """A fresh run: members (from `weights_file` where the backbone has ImageNet weights) and
    proxies drawn from their own (seed, member) generators, the optimiser, the masks."""
    recipe, seed = spec["training"], spec["seed"]
    defense = build_defense(spec["defense"])
    members = [
        fast_path.prepare_model(member)
        for member in build_members(spec, defense.n_members, weights_file)
    ]
    n_classes = int(labels.max()) + 1
    pal_losses = [
        proxy_anchor_loss(
            n_classes,
            spec["backbone"]["embedding_dim"],
            recipe,
            member_generator(seed, index, "proxies"),
        ).to(device)
        for index in range(defense.n_members)
    ]
    optimizer = make_optimizer(members, pal_losses, recipe)
    return Run(defense, members, pal_losses, optimizer, defense.member_masks(labels, seed))


def resume(run: Run, checkpoint_path: Path, spec: dict) -> None:
    """Load the checkpoint's weights, proxies, optimiser and history into `run` when it
    belongs to this spec (load_checkpoint); otherwise leave the fresh run as it is."""
    state = load_checkpoint(checkpoint_path, spec)
    if state is None:
        return
    for member, member_state in zip(run.members, state["members"], strict=True):
        member.load_state_dict(member_state)
    for pal, pal_state in zip(run.pal_losses, state["pal_losses"], strict=True):
        pal.load_state_dict(pal_state)
    run.optimizer.load_state_dict(state["optimizer"])
    # rebuilt with this code's key strings: pickle writes each distinct key object, so
    # reused ones keep a resumed run's model file byte-identical to an uninterrupted one's
    run.history = [{"epoch": h["epoch"], "loss": h["loss"]} for h in state["history"]]
    log.info("resuming from %s after epoch %d", checkpoint_path, state["epoch"] + 1)


def train_epoch(
    run: Run,
    spec: dict,
    loader: DataLoader,
    sampler: "EpochBatches",
    labels: torch.Tensor,
    epoch: int,
    fast_path: FastPath,
) -> float:
    """One epoch (all its randomness from the (seed, epoch) generator, so a resumed run draws
    what the uninterrupted one drew); returns the mean batch loss."""
    recipe, seed = spec["training"], spec["seed"]
    set_epoch(run.members, run.optimizer, recipe, epoch)
    epoch_generator = generator(seed, epoch)
    step = StepContext(run.members, run.pal_losses, epoch_generator, seed, epoch, recipe["epochs"])
    batches = epoch_batches(run.defense.batches, labels, recipe["batch_size"], epoch_generator)
    sampler.batches = batches
    total = 0.0
    description = f"epoch {epoch + 1}/{recipe['epochs']}"
    progress = tqdm(loader, desc=description, total=len(batches), mininterval=5)
    for (batch_images, batch_labels), batch in zip(progress, batches, strict=True):
        index = torch.tensor([sample for sample, _ in batch])
        loss = train_step(
            run.defense, step, run.optimizer, batch_images, batch_labels, run.masks[index],
            recipe["grad_clip_value"], fast_path,
        )  # fmt: skip
        total += loss.item()
        progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return total / max(len(batches), 1)


def save_checkpoint(path: Path, spec: dict, run: Run, epoch: int) -> None:
    """Everything `resume` needs after `epoch`, written atomically."""
    torch_save(
        path,
        {
            "spec_hash": spec_hash(spec),
            "epoch": epoch,
            "members": [member.state_dict() for member in run.members],
            "pal_losses": [pal.state_dict() for pal in run.pal_losses],
            "optimizer": run.optimizer.state_dict(),
            "history": run.history,
        },
    )


def train_step(
    defense: Defense,
    step: StepContext,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    grad_clip_value: float,
    fast_path: FastPath,
) -> torch.Tensor:
    """One optimiser step on one batch (the loss under the fast path's autocast, the backward
    pass outside it, as torch recommends); returns the loss."""
    device = fast_path.device
    with fast_path.autocast():
        loss = defense.loss(step, fast_path.batch(images), labels.to(device), mask.to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    nn.utils.clip_grad_value_(parameters, grad_clip_value)
    optimizer.step()
    return loss


class EpochBatches:
    """A DataLoader's batch sampler whose batches each epoch sets: one loader serves the whole
    run, so its workers can persist across epochs."""

    def __init__(self):
        self.batches: list[list] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_optimizer(members: list[nn.Module], pal_losses: list[nn.Module], recipe: dict):
    """AdamW over trunks, heads and proxies; proxies learn `proxy_lr_multiplier` times faster."""
    lr = recipe["lr"]
    groups = [
        {"name": "trunk", "params": [p for m in members for p in m.trunk.parameters()], "lr": lr},
        {"name": "head", "params": [p for m in members for p in m.head.parameters()], "lr": lr},
        {
            "name": "proxies",
            "params": [p for pal in pal_losses for p in pal.parameters()],
            "lr": lr * recipe["proxy_lr_multiplier"],
        },
    ]
    for group in groups:
        group["base_lr"] = group["lr"]
    return torch.optim.AdamW(groups, weight_decay=recipe["weight_decay"])


def set_epoch(members: list[nn.Module], optimizer, recipe: dict, epoch: int) -> None:
    """Apply warm-up (trunks frozen), step decay and BatchNorm freezing for this epoch."""
    warming_up = epoch < recipe["warmup_epochs"]
    decay_step = recipe["lr_decay_step"]
    factor = recipe["lr_decay_gamma"] ** (epoch // decay_step) if decay_step else 1.0
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    for member in members:
        member.train()
        for parameter in member.trunk.parameters():
            parameter.requires_grad_(not warming_up)
        if recipe["freeze_bn"]:
            for module in member.trunk.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()


def load_checkpoint(path: Path, spec: dict) -> dict | None:
    """The checkpoint at `path` if it belongs to this exact spec, else None (and say why: an
    unreadable or unsafe one is named as such, then overwritten by the new run's)."""
    if not path.exists():
        return None
    try:
        state = torch_load(path, "checkpoint", "not resuming from it: training starts over")
    except UnreadableFileError as error:
        log.warning("%s", error)
        return None
    if not isinstance(state, dict) or state.get("spec_hash") != spec_hash(spec):
        log.warning("ignoring checkpoint %s: it belongs to another configuration", path)
        return None
    return state
