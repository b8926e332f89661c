"""DVERGE (Yang et al., "DVERGE: Diversifying Vulnerabilities for Enhanced Robust Generation
of Ensembles", NeurIPS 2020) adapted to DML. For each member j, feature distillation turns
each image x into x'_j, inside the eps ball around x, whose features at one trunk layer
mimic those of another image of the batch (x'_j carries j's non-robust features of that
other image). Member i then learns the label of x on every peer's distilled images
(cross-training: loss_i = sum over j != i of PAL_i(f_i(x'_j), y)), so no member keeps the
non-robust features its peers are vulnerable to.

`layer` indexes the trunk's modules (negative: from the end), so one value fits the small CNN,
the MLP and ResNets."""

import torch

from robdml.defenses.base import Defense, eval_mode


def layer_features(member, images: torch.Tensor, layer: int) -> torch.Tensor:
    """Output of `member.trunk[layer]` for `images`, flattened to [N, features]."""
    captured = []
    # clone: an in-place ReLU that follows the layer would overwrite its output
    hook = member.trunk[layer].register_forward_hook(
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
