"""Proxy Anchor loss (Kim et al., CVPR 2020) from pytorch-metric-learning; its proxies are
trainable parameters that get their own optimiser group (learning rate x multiplier)."""

from pytorch_metric_learning.losses import ProxyAnchorLoss


def proxy_anchor_loss(n_classes: int, embedding_dim: int, training: dict) -> ProxyAnchorLoss:
    """A fresh Proxy Anchor loss with the recipe's margin and alpha."""
    return ProxyAnchorLoss(
        num_classes=n_classes,
        embedding_size=embedding_dim,
        margin=training["pal_margin"],
        alpha=training["pal_alpha"],
    )
