"""DVERGE (Yang et al., "DVERGE: Diversifying Vulnerabilities for Enhanced Robust Generation
of Ensembles", NeurIPS 2020) adapted to DML, as the official code runs it (zjysteven/DVERGE,
train/train_dverge.py, distillation.py):

- feature distillation (`Linf_distillation`): for each member j, every image x of the batch is
  moved inside the eps ball around x so that j's pre-ReLU features at one layer mimic those of
  a target image (MSE), by an MI-FGSM-style descent: the gradient, L1-normalised per sample, is
  accumulated with factor mu (`momentum`), and each step moves by -step * sign(accumulated);
  no random start unless `random_start`. x'_j carries j's non-robust features of the target.
- the layer: `layer: random` draws one layer per epoch, uniformly over the candidate layers
  (`feature_layers`; their `random.randint(1, depth)`), shared by all members and steps of the
  epoch; an integer fixes it (their `--distill-fixed-layer --distill-layer`), counted in
  `feature_layers` (negative: from the end).
- cross-training: member i learns the label of x on every peer's distilled images,
  loss_i = sum over j != i of PAL_i(f_i(x'_j), y), so no member keeps the non-robust features
  its peers are vulnerable to. With `plus_adv` (their DVERGE+AdvT), loss_i = diversity_weight x
  that + PAL_i on member i's own PGD examples (random start, `attack`).

Targets: the official code pairs each batch with a batch of a second, independently shuffled
pass of the loader; here the targets are a random permutation of the batch itself (from the
step generator), since the training loop hands a defense one batch. Crafting runs with
BatchNorm in eval mode, as everywhere in this package (theirs runs in train mode)."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from robdml.attacks.pgd import project, random_start, value_and_gradient
from robdml.defenses.base import Defense, eval_mode
from robdml.runtime import generator
from robdml.threat_model import radius

LAYER_STREAM = -2  # generator key (seed, epoch, LAYER_STREAM) of the epoch's layer draw
L1_FLOOR = 1e-12  # Linf_distillation's lower clamp of the per-sample gradient L1 norm


@dataclass(eq=False)
class Tap:
    """A tensor of a member's forward pass: the output of `module` (`point='output'`), or, for
    a residual block, the input of the block's last ReLU call (`point='relu_input'`): the
    pre-activation sum out + identity."""

    module: nn.Module
    point: str = "output"


def feature_layers(member: nn.Module) -> list[tuple[Tap, ...]]:
    """The layers DVERGE may distil at, in forward order; a layer's features are its taps'
    values, flattened and concatenated. As their ResNet's `get_features(before_relu=True)`
    numbers its layers (1 .. depth: every conv layer's BN output before its ReLU, with the
    residual added at a block's end, then the logits), they are the weight layers' outputs
    before the activation:

    - small_cnn: each BatchNorm output; mlp: each Linear output;
    - torchvision ResNet: the stem's bn1; per residual block the inner BNs that feed a ReLU
      (bn1; Bottleneck also bn2), then the block's pre-activation sum (18 layers in all for
      ResNet-18, 50 for ResNet-50);
    - GoogLeNet: the stem convolutions' BN outputs, then per inception module the
      concatenation of its four branches' last BN outputs: each branch ends in its own ReLU,
      and ReLU acts elementwise, so this is exactly the module's output before activation
      (the branches' inner 1x1 reductions are not layers of their own);
    - last, the member's output: the L2-normalised embedding, what the Proxy Anchor loss sees,
      in place of their classifier's logits.
    """
    from torchvision.models.googlenet import BasicConv2d, Inception
    from torchvision.models.resnet import BasicBlock, Bottleneck

    def walk(module: nn.Module):
        if isinstance(module, nn.BatchNorm2d | nn.Linear):
            yield (Tap(module),)
        elif isinstance(module, BasicBlock):
            yield (Tap(module.bn1),)
            yield (Tap(module, "relu_input"),)
        elif isinstance(module, Bottleneck):
            yield (Tap(module.bn1),)
            yield (Tap(module.bn2),)
            yield (Tap(module, "relu_input"),)
        elif isinstance(module, BasicConv2d):
            yield (Tap(module.bn),)
        elif isinstance(module, Inception):
            branches = (module.branch1, module.branch2[-1], module.branch3[-1], module.branch4[-1])
            yield tuple(Tap(branch.bn) for branch in branches)
        else:
            for child in module.children():
                yield from walk(child)

    return [*walk(member.trunk), (Tap(member),)]


class _Captured(Exception):
    """Raised once every tap of the layer is recorded: the rest of the forward pass is skipped
    (their `get_features` also stops at the layer)."""


def layer_features(member: nn.Module, images: torch.Tensor, layer: int) -> torch.Tensor:
    """`member`'s features at `feature_layers(member)[layer]` for `images`: [N, features]."""
    return tap_features(member, images, feature_layers(member)[layer])


def tap_features(member: nn.Module, images: torch.Tensor, taps: tuple[Tap, ...]) -> torch.Tensor:
    """`member`'s features at one layer, given as its taps, for `images`: [N, features]."""
    values: dict[int, torch.Tensor] = {}
    last_relu_input: dict[int, torch.Tensor] = {}

    def record(index: int, value: torch.Tensor) -> None:
        values[index] = value
        if len(values) == len(taps):
            raise _Captured

    handles = []
    for index, tap in enumerate(taps):
        # clone: the in-place ReLU that follows would overwrite the pre-activation values
        if tap.point == "output":
            handles.append(
                tap.module.register_forward_hook(
                    lambda module, args, output, index=index: record(index, output.clone())
                )
            )
        else:
            handles.append(
                tap.module.relu.register_forward_pre_hook(
                    lambda module, args, index=index: last_relu_input.update(
                        {index: args[0].clone()}
                    )
                )
            )
            handles.append(
                tap.module.register_forward_hook(
                    lambda module, args, output, index=index: record(index, last_relu_input[index])
                )
            )
    try:
        member(images)
    except _Captured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(values) < len(taps):
        raise RuntimeError("the layer was not reached by the forward pass")
    return torch.cat([values[index].flatten(start_dim=1) for index in range(len(taps))], dim=1)


def momentum_descent(
    objective: Callable[[torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    radius: float,
    step_size: float,
    steps: int,
    momentum: float,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Minimise the per-sample `objective` over the L-inf ball of `radius` around `clean` (and
    [0, 1]), as `Linf_distillation` does: g <- momentum * g + grad / ||grad||_1 (per sample), then
    x <- project(x - step_size * sign(g)). `momentum` 0 is plain sign descent (their
    `--distill-no-momentum`). Starts at `start`, else at `clean`."""
    clean = clean.detach()
    adversarial = clean.clone() if start is None else start.detach().clone()
    accumulated = torch.zeros_like(clean)
    view = (-1,) + (1,) * (clean.dim() - 1)
    for _ in range(steps):
        _, gradient = value_and_gradient(objective, adversarial)
        l1 = gradient.flatten(start_dim=1).abs().sum(dim=1).clamp_min(L1_FLOOR)
        accumulated = momentum * accumulated + gradient / l1.view(view)
        adversarial = project(adversarial - step_size * accumulated.sign(), clean, radius)
    return adversarial


class DVERGE(Defense):
    def layer_index(self, step) -> int:
        """The layer of this epoch: `layer` itself, or for `random` one drawn uniformly over
        the candidate layers from the (seed, epoch, LAYER_STREAM) generator, so the same for
        every step of an epoch and reproduced on resume."""
        layer = self.params["layer"]
        if layer != "random":
            return layer
        count = len(feature_layers(step.members[0]))
        draw = generator(step.seed, step.epoch, LAYER_STREAM)
        return int(torch.randint(count, (1,), generator=draw))

    def distill(self, step, member, images, targets, layer: int) -> torch.Tensor:
        """`images` moved within the eps ball so that `member`'s features at `layer` mimic
        those of `targets` (mean squared error; their MSELoss, up to a per-sample factor that
        the L1 normalisation removes)."""
        settings = self.params["distillation"]
        ball = radius(settings["eps_255"])
        taps = feature_layers(member)[layer]  # once, not at every descent step
        with eval_mode([member]):
            with torch.no_grad():
                goal = tap_features(member, targets, taps)
            start = random_start(images, ball, step.generator) if settings["random_start"] else None
            return momentum_descent(
                lambda x: (tap_features(member, x, taps) - goal).pow(2).mean(dim=1),
                images,
                ball,
                ball * settings["step_fraction"],
                settings["steps"],
                settings["momentum"],
                start,
            )

    def loss(self, step, images, labels, mask):
        layer = self.layer_index(step)
        plus_adv = self.params["plus_adv"]
        shuffle = torch.randperm(len(images), generator=step.generator).to(images.device)
        targets = images[shuffle]
        distilled, adversarial = [], []
        for member, pal in zip(step.members, step.pal_losses, strict=True):
            distilled.append(self.distill(step, member, images, targets, layer))
            if plus_adv:
                adversarial.append(
                    step.craft(
                        lambda x, member=member, pal=pal: pal(member(x), labels),
                        images,
                        self.params["attack"],
                    )
                )
        total = 0
        for index, (member, pal) in enumerate(zip(step.members, step.pal_losses, strict=True)):
            diversity = sum(
                pal(member(peer_images), labels)
                for peer, peer_images in enumerate(distilled)
                if peer != index
            )
            if plus_adv:
                adversarial_loss = pal(member(adversarial[index]), labels)
                total = total + self.params["diversity_weight"] * diversity + adversarial_loss
            else:
                total = total + diversity
        return total
