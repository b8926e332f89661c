"""A model "trained elsewhere": the quick demo's CNN written in plain PyTorch, the way a
researcher's own code would define it (no robdml import). The factory returns the module that
maps normalised images to embeddings; robdml wraps it (robdml.models.external)."""

from torch import nn


class GlyphCNN(nn.Module):
    """Three conv3x3-BN-ReLU-maxpool stages, global average + max pooling, a linear embedding."""

    def __init__(self, in_channels: int = 1, widths=(16, 32, 64), embedding_dim: int = 64):
        super().__init__()
        layers, channels = [], in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Linear(channels, embedding_dim)

    def forward(self, images):
        features = self.features(images)
        return self.embedding(features.mean(dim=(2, 3)) + features.amax(dim=(2, 3)))


def build() -> nn.Module:
    return GlyphCNN()
