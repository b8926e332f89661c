"""The shared trainer: Proxy Anchor learns, runs are deterministic, and resume is exact."""

import pytest
import torch

from conftest import toy_images
from robdml.data.datasets import InMemoryImages
from robdml.defenses import DEFENSES
from robdml.losses import proxy_anchor_loss
from robdml.models import EmbeddingModel, load_model
from robdml.training import train


def toy_set():
    images, labels = toy_images()
    return InMemoryImages(images, labels, None)


def test_proxy_anchor_training_lowers_the_loss_on_a_toy_batch(tiny_spec):
    torch.manual_seed(0)
    images, labels = toy_images()
    model = EmbeddingModel(tiny_spec["backbone"], tiny_spec["dataset"])
    pal = proxy_anchor_loss(4, tiny_spec["backbone"]["embedding_dim"], tiny_spec["training"])
    optimizer = torch.optim.AdamW([*model.parameters(), *pal.parameters()], lr=0.01)
    batch = images.float() / 255

    def loss():
        return pal(model(batch), labels)

    before = loss().item()
    for _ in range(30):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.5 * before


def test_training_is_deterministic(tmp_path, tiny_spec):
    for name in ("a", "b"):
        train(tiny_spec, toy_set(), tmp_path / f"{name}.pt", tmp_path / f"{name}.ckpt", "cpu")
    first, _ = load_model(tmp_path / "a.pt")
    second, _ = load_model(tmp_path / "b.pt")
    for (key, p), (_, q) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), key


def test_interrupted_training_resumes_to_the_same_parameters(tmp_path, tiny_spec, monkeypatch):
    tiny_spec["training"]["epochs"] = 3
    tiny_spec["defense"] = {
        "method": "pgd_at",
        "attack": {"eps_255": 8, "steps": 2, "step_fraction": 0.5},
        "clean_weight": 0.0,
    }
    train(tiny_spec, toy_set(), tmp_path / "full.pt", tmp_path / "full.ckpt", "cpu")

    calls = {"n": 0}
    original = DEFENSES["pgd_at"].loss

    def crash_in_epoch_two(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:  # 4 batches per epoch: the second batch of epoch 2
            raise KeyboardInterrupt("simulated preemption")
        return original(self, *args)

    monkeypatch.setattr(DEFENSES["pgd_at"], "loss", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_spec, toy_set(), tmp_path / "resumed.pt", tmp_path / "resumed.ckpt", "cpu")
    assert (tmp_path / "resumed.ckpt").exists() and not (tmp_path / "resumed.pt").exists()
    monkeypatch.setattr(DEFENSES["pgd_at"], "loss", original)
    history = train(tiny_spec, toy_set(), tmp_path / "resumed.pt", tmp_path / "resumed.ckpt", "cpu")
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert not (tmp_path / "resumed.ckpt").exists()
    full, _ = load_model(tmp_path / "full.pt")
    resumed, _ = load_model(tmp_path / "resumed.pt")
    for (key, p), (_, q) in zip(
        full.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), key


def test_checkpoint_of_another_configuration_is_ignored(tmp_path, tiny_spec):
    tiny_spec["training"]["epochs"] = 1
    train(tiny_spec, toy_set(), tmp_path / "a.pt", tmp_path / "shared.ckpt", "cpu")
    other = {**tiny_spec, "seed": 1}
    history = train(other, toy_set(), tmp_path / "b.pt", tmp_path / "shared.ckpt", "cpu")
    assert [h["epoch"] for h in history] == [1]
