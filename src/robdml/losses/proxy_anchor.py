"""Proxy Anchor loss (Kim et al., CVPR 2020) from pytorch-metric-learning; its proxies are
trainable parameters that get their own optimiser group (learning rate x multiplier)."""

import torch
from pytorch_metric_learning.losses import ProxyAnchorLoss


def proxy_anchor_loss(
    n_classes: int, embedding_dim: int, training: dict, generator: torch.Generator | None = None
) -> ProxyAnchorLoss:
    """A fresh Proxy Anchor loss with the recipe's margin and alpha. With `generator`, its
    proxies are redrawn from it with the library's own init (Kaiming normal, fan-out), so an
    ensemble member's proxies depend on that member's generator only."""
    loss = ProxyAnchorLoss(
        num_classes=n_classes,
        embedding_size=embedding_dim,
        margin=training["pal_margin"],
        alpha=training["pal_alpha"],
    )
    if generator is not None:
        with torch.no_grad():
            torch.nn.init.kaiming_normal_(loss.proxies, mode="fan_out", generator=generator)
    return loss
