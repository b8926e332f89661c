"""Trunks that turn normalised images into a feature vector; the embedding head lives in
`embedding.py`. Each builder returns (trunk, feature_dim)."""

from pathlib import Path

import torch
from torch import nn

from robdml.models.weights import read_weights, torchvision_weights


class GlobalAvgMaxPool(nn.Module):
    """Sum of global average and global max pooling, as in the Proxy Anchor code base."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=(2, 3)) + features.amax(dim=(2, 3))


def small_cnn(in_channels: int, widths: list[int]) -> tuple[nn.Module, int]:
    """[conv3x3 -> BN -> maxpool2 -> ReLU] per width, then global avg+max pooling.

    Pooling before the ReLU computes exactly what ReLU then pooling does (both are monotone;
    the same embeddings and input gradients, bit for bit: tests/models/test_backbones.py),
    with the ReLU on a quarter of the values: 9-16 % less time per forward+backward pass."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width in widths:
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        ]
        channels = width
    layers.append(GlobalAvgMaxPool())
    return nn.Sequential(*layers), channels


def mlp(in_channels: int, image_size: int, widths: list[int]) -> tuple[nn.Module, int]:
    """Flatten -> [Linear -> ReLU] per width: a cheap second architecture for the offline grid."""
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_channels * image_size * image_size
    for width in widths:
        layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
        features = width
    return nn.Sequential(*layers), features


# What torchvision's builders set when they load ImageNet weights (googlenet: the weights
# carry the auxiliary heads and expect `transform_input`), so that the state dict fits.
PRETRAINED_KWARGS = {
    "googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False}
}


def torchvision_classifier(
    arch: str, weights: str | None, weights_file: str | Path | None = None, **kwargs
) -> nn.Module:
    """A torchvision ImageNet classifier: random (`weights` None), or holding torchvision's
    weights `weights` read from `weights_file` (fetched beforehand by rule fetch_weights; this
    never downloads, and a missing file is a MissingWeightsError saying how to fetch it).
    Built exactly as `torchvision.models.get_model(arch, weights=weights)` builds it."""
    import torchvision

    if weights is None:
        return torchvision.models.get_model(arch, weights=None, **kwargs)
    meta = torchvision_weights(arch, weights).meta
    state = read_weights(arch, weights, weights_file)
    kwargs = {**kwargs, **PRETRAINED_KWARGS.get(arch, {}), "num_classes": len(meta["categories"])}
    net = torchvision.models.get_model(arch, weights=None, **kwargs)
    net.load_state_dict(state)
    if arch == "googlenet":  # as torchvision: the auxiliary heads are not pretrained, dropped
        net.aux_logits = False
        net.aux1 = net.aux2 = None
    return net


def torchvision_resnet(
    arch: str, weights: str | None, weights_file: str | Path | None = None
) -> tuple[nn.Module, int]:
    """A torchvision ResNet without its classifier, with avg+max pooling."""
    net = torchvision_classifier(arch, weights, weights_file)
    feature_dim = net.fc.in_features
    trunk = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool,
        net.layer1, net.layer2, net.layer3, net.layer4,
        GlobalAvgMaxPool(),
    )  # fmt: skip
    return trunk, feature_dim


class GoogLeNetTrunk(nn.Module):
    """torchvision's GoogLeNet up to inception5b, then avg+max pooling: the stand-in for the
    Proxy Anchor paper's BN-Inception, whose weights only an unmaintained package provides.

    Its ImageNet weights were ported from TensorFlow and expect pixels scaled to [-1, 1];
    like torchvision's `transform_input`, the input, normalised with the ImageNet mean/std, is
    mapped to that scale. The map is applied with random weights too, so a saved model computes
    the same function however it was initialised (`load_model` rebuilds without weights).
    """

    IMAGENET_MEAN = (0.485, 0.456, 0.406)
    IMAGENET_STD = (0.229, 0.224, 0.225)

    def __init__(self, weights: str | None, weights_file: str | Path | None = None):
        super().__init__()
        # with weights the auxiliary heads are dropped as torchvision drops them; a random init
        # uses PyTorch's defaults (torchvision's own GoogLeNet init is slow and deprecated)
        untrained = {} if weights else {"aux_logits": False, "init_weights": False}
        net = torchvision_classifier("googlenet", weights, weights_file, **untrained)
        mean, std = torch.tensor(self.IMAGENET_MEAN), torch.tensor(self.IMAGENET_STD)
        self.register_buffer("scale", (std / 0.5).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean - 0.5) / 0.5).view(1, 3, 1, 1), persistent=False)
        self.features = nn.Sequential(
            net.conv1, net.maxpool1, net.conv2, net.conv3, net.maxpool2,
            net.inception3a, net.inception3b, net.maxpool3,
            net.inception4a, net.inception4b, net.inception4c, net.inception4d, net.inception4e,
            net.maxpool4, net.inception5a, net.inception5b,
            GlobalAvgMaxPool(),
        )  # fmt: skip
        self.feature_dim = net.fc.in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images * self.scale + self.shift)


def build_trunk(
    backbone: dict, in_channels: int, image_size: int, weights_file: str | Path | None = None
) -> tuple[nn.Module, int]:
    """Dispatch on `backbone['arch']` (validated by the config schema). A torchvision trunk
    starts from the ImageNet weights `backbone['weights']` names, read from `weights_file`;
    with None, from a random init."""
    arch, weights = backbone["arch"], backbone["weights"]
    if arch == "small_cnn":
        return small_cnn(in_channels, backbone["widths"])
    if arch == "mlp":
        return mlp(in_channels, image_size, backbone["widths"])
    if arch in ("resnet18", "resnet50"):
        return torchvision_resnet(arch, weights, weights_file)
    if arch == "googlenet":
        trunk = GoogLeNetTrunk(weights, weights_file)
        return trunk, trunk.feature_dim
    raise ValueError(f"unknown backbone arch {arch!r}")
