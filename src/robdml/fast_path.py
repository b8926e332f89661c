"""The fast path: what training and attack jobs do differently to run faster, on cuda (the
config's `gpu` section) and on CPU (its `cpu` section: channels_last only).

On cuda, by default: bf16 autocast for the training step and for crafting adversarial
examples (convolutions and matrix products in bf16; torch keeps softmax, log, exp and sums in
fp32; embeddings that are measured, for the clean context, the objective values and every
evaluation, stay fp32), channels_last weights and batches, cuDNN's autotuner, pinned memory
and persistent workers in the training loader, and the whole uint8 test set on the GPU while
an attack runs. The first three can change results beyond noise, so the config's `gpu`
section switches each (docs/performance.md "GPU fast path"); the rest only move data sooner.

On CPU two settings can be on (the `cpu` section; docs/performance.md "GPU fast path"):
`channels_last` (the small CNN's max-pooling and convolutions run faster in that layout) and
`fold_batch_norm` (crafting only: each BatchNorm2d that follows a Conv2d in an nn.Sequential is
folded into the convolution, torch's `fuse_conv_bn_eval`: the same function in eval mode, one
layer fewer; the small CNN's attack passes take 0.7x the time). Both change floating-point
rounding, which training and attacks amplify like a change of data order does. Every other
part is off on CPU, exactly: with both off, the CPU path runs the same operations as without
this module (tests/test_fast_path.py checks bit-identical results). Evaluation never uses it:
it measures with the plain model.
"""

import argparse
import contextlib
import logging
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

GPU_DEFAULTS = {"autocast_bf16": True, "channels_last": True, "cudnn_benchmark": True}
CPU_SETTINGS = ("channels_last", "fold_batch_norm")  # off unless the `cpu` section says on
SETTINGS = (*GPU_DEFAULTS, "fold_batch_norm")


def add_fast_path_options(parser: argparse.ArgumentParser) -> None:
    """`--autocast-bf16` / `--no-autocast-bf16` and so on, one per setting (absent: the
    device's default); the workflow passes the config's `gpu` or `cpu` section this way."""
    for key in SETTINGS:
        parser.add_argument(
            f"--{key.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=None
        )


def fast_path_settings(args: argparse.Namespace) -> dict:
    """The settings given by `add_fast_path_options`' options, for `configure_fast_path`."""
    return {key: getattr(args, key) for key in SETTINGS if getattr(args, key) is not None}


@dataclass(frozen=True)
class FastPath:
    """The fast path's settings on one device; everything off unless built by
    `configure_fast_path` on cuda."""

    device: torch.device
    autocast_bf16: bool = False
    channels_last: bool = False
    cudnn_benchmark: bool = False
    fold_batch_norm: bool = False

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast where it is on; a no-op elsewhere."""
        if self.autocast_bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The model on the device, with channels_last convolution weights where that is on."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def crafting_model(self, model: nn.Module) -> nn.Module:
        """`model`, changed in place into what attacks craft with: eval mode, its batch norms
        folded into their convolutions where that is on, prepared (attack jobs measure with
        another copy)."""
        model.eval()
        if self.fold_batch_norm:
            fold_batch_norms(model)
        return self.prepare_model(model)

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device (asynchronously from pinned memory on cuda), in
        channels_last where that is on."""
        images = images.to(self.device, non_blocking=self.on_gpu)
        if self.channels_last and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def resident(self, images: torch.Tensor) -> torch.Tensor:
        """The set that batches are cut from: all of it on the GPU on cuda (a uint8 In-Shop test
        set is 2.1 GB), so no batch crosses PCIe again; unchanged elsewhere."""
        return images.to(self.device) if self.on_gpu else images

    def loader_options(self, num_workers: int) -> dict:
        """DataLoader options: pinned memory and workers that live for the whole run on cuda."""
        return {"pin_memory": self.on_gpu, "persistent_workers": self.on_gpu and num_workers > 0}


def configure_fast_path(device: torch.device | str, settings: dict | None = None) -> FastPath:
    """The fast path for `device`: on cuda, `settings` (the config's `gpu` section: autocast_bf16,
    channels_last, cudnn_benchmark; None: all on; fold_batch_norm off unless given) and cuDNN's
    autotuner set to match (a process-wide switch); on CPU, channels_last and fold_batch_norm
    from `settings` (the `cpu` section; None: off) and nothing else; on any other device, all
    off. Nothing process-wide is set off cuda."""
    device = torch.device(device)
    if device.type == "cpu":
        return FastPath(device, **{key: bool((settings or {}).get(key)) for key in CPU_SETTINGS})
    if device.type != "cuda":
        return FastPath(device)
    fast_path = FastPath(device, **{**GPU_DEFAULTS, **(settings or {})})
    torch.backends.cudnn.benchmark = fast_path.cudnn_benchmark
    log.info("GPU fast path: %s", {k: v for k, v in asdict(fast_path).items() if k != "device"})
    return fast_path


def fold_batch_norms(model: nn.Module) -> None:
    """Fold, in place, every BatchNorm2d that directly follows a Conv2d in an nn.Sequential into
    that convolution (eval mode: the same affine map, up to rounding); the norm's place holds an
    nn.Identity. Norms elsewhere (torchvision's residual blocks call theirs by name) stay."""
    for sequence in [module for module in model.modules() if isinstance(module, nn.Sequential)]:
        for index in range(len(sequence) - 1):
            conv, norm = sequence[index], sequence[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                sequence[index] = fuse_conv_bn_eval(conv, norm)
                sequence[index + 1] = nn.Identity()
