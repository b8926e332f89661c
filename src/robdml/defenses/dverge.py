"""DVERGE (Yang et al., "DVERGE: Diversifying Vulnerabilities for Enhanced Robust Generation
of Ensembles", NeurIPS 2020) adapted to DML. For each member j, feature distillation turns
each image x into x'_j, inside the eps ball around x, whose features at one trunk layer
mimic those of another image of the batch (x'_j carries j's non-robust features of that
other image). Member i then learns the label of x on every peer's distilled images
(cross-training: loss_i = sum over j != i of PAL_i(f_i(x'_j), y)), so no member keeps the
non-robust features its peers are vulnerable to.

`layer` indexes the trunk's blocks (negative: from the end), so one value fits the small CNN,
the MLP, ResNets and GoogLeNet."""

import torch
from torch import nn

from robdml.defenses.base import Defense, eval_mode


def trunk_blocks(trunk: nn.Module) -> list[nn.Module]:
    """The trunk's blocks in forward order, nested Sequentials flattened: the small CNN's and
    the MLP's layers, a ResNet's residual blocks, GoogLeNet's inception modules."""
    blocks = []
    for child in trunk.children():
        blocks += trunk_blocks(child) if isinstance(child, nn.Sequential) else [child]
    return blocks


def layer_features(member, images: torch.Tensor, layer: int) -> torch.Tensor:
    """Output of the trunk's block `layer` for `images`, flattened to [N, features]."""
    captured = []
    # clone: an in-place ReLU that follows the block would overwrite its output
    hook = trunk_blocks(member.trunk)[layer].register_forward_hook(
        lambda module, inputs, output: captured.append(output.clone())
    )
    try:
        member(images)
    finally:
        hook.remove()
    return captured[0].flatten(start_dim=1)


class DVERGE(Defense):
    def distill(self, step, member, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`images` moved within the eps ball so that `member`'s features at `layer` mimic
        those of `targets` (PGD on minus the feature distance)."""
        layer = self.params["layer"]
        with eval_mode([member]), torch.no_grad():
            goal = layer_features(member, targets, layer)
        return step.craft(
            lambda x: -(layer_features(member, x, layer) - goal).pow(2).sum(dim=1),
            images,
            self.params["distillation"],
        )

    def loss(self, step, images, labels, mask):
        shuffle = torch.randperm(len(images), generator=step.generator).to(images.device)
        distilled = [self.distill(step, member, images, images[shuffle]) for member in step.members]
        return sum(
            pal(member(peer_images), labels)
            for index, (member, pal) in enumerate(zip(step.members, step.pal_losses, strict=True))
            for peer, peer_images in enumerate(distilled)
            if peer != index
        )
