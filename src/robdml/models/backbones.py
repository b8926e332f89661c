"""Trunks that turn normalised images into a feature vector; the embedding head lives in
`embedding.py`. Each builder returns (trunk, feature_dim)."""

import torch
from torch import nn


class GlobalAvgMaxPool(nn.Module):
    """Sum of global average and global max pooling, as in the Proxy Anchor code base."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=(2, 3)) + features.amax(dim=(2, 3))


def small_cnn(in_channels: int, widths: list[int]) -> tuple[nn.Module, int]:
    """[conv3x3 -> BN -> ReLU -> maxpool2] per width, then global avg+max pooling."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width in widths:
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
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


def torchvision_resnet(arch: str, pretrained: bool) -> tuple[nn.Module, int]:
    """A torchvision ResNet without its classifier, with avg+max pooling."""
    import torchvision

    weights = "DEFAULT" if pretrained else None
    try:
        net = torchvision.models.get_model(arch, weights=weights)
    except Exception as error:  # no network / no cached weights
        raise RuntimeError(
            f"could not load ImageNet weights for {arch} ({error}); they are downloaded once into "
            "$TORCH_HOME (default ~/.cache/torch). Download them on a machine with network, or set "
            "backbones.<name>.pretrained: false"
        ) from error
    feature_dim = net.fc.in_features
    trunk = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool,
        net.layer1, net.layer2, net.layer3, net.layer4,
        GlobalAvgMaxPool(),
    )  # fmt: skip
    return trunk, feature_dim


def build_trunk(backbone: dict, in_channels: int, image_size: int) -> tuple[nn.Module, int]:
    """Dispatch on `backbone['arch']` (validated by the config schema)."""
    arch = backbone["arch"]
    if arch == "small_cnn":
        return small_cnn(in_channels, backbone["widths"])
    if arch == "mlp":
        return mlp(in_channels, image_size, backbone["widths"])
    if arch in ("resnet18", "resnet50"):
        return torchvision_resnet(arch, backbone["pretrained"])
    raise ValueError(f"unknown backbone arch {arch!r}")
