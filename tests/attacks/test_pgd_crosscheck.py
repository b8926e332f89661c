"""Independent cross-check of the PGD core: with a cross-entropy objective on a tiny classifier
and no random start, our PGD equals torchattacks' PGD step for step."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robdml.attacks import pgd

torchattacks = pytest.importorskip(
    "torchattacks", reason="pip install --no-deps -r envs/requirements-nodeps.txt"
)


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()


@pytest.mark.parametrize("steps", [1, 2, 5, 10])
def test_pgd_matches_torchattacks_step_for_step(steps):
    model = tiny_classifier()
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(2))
    eps, alpha = 8 / 255, 2 / 255
    reference = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)
    expected = reference(images, labels)
    ours = pgd(
        lambda x: F.cross_entropy(model(x), labels, reduction="none"),
        images, eps, alpha, steps, generator=None,
    )  # fmt: skip
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    assert (ours != images).any()
