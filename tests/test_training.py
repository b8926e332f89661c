"""The shared trainer: Proxy Anchor learns, runs are deterministic, and resume is exact."""

import hashlib
import logging

import pytest
import torch

from conftest import toy_images
from robdml.data.datasets import InMemoryImages
from robdml.defenses import DEFENSES
from robdml.losses import proxy_anchor_loss
from robdml.models import EmbeddingModel, load_model
from robdml.training import make_optimizer, set_epoch, train


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


def test_training_is_deterministic_down_to_the_model_files_bytes(tmp_path, tiny_spec):
    for name in ("a", "b"):
        train(tiny_spec, toy_set(), tmp_path / f"{name}.pt", tmp_path / f"{name}.ckpt", "cpu")
    digests = [hashlib.sha256((tmp_path / f"{n}.pt").read_bytes()).hexdigest() for n in "ab"]
    assert digests[0] == digests[1]  # no timings, no file name inside
    first, _ = load_model(tmp_path / "a.pt")
    second, _ = load_model(tmp_path / "b.pt")
    for (key, p), (_, q) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), key


def test_interrupted_training_resumes_to_the_same_parameters(
    tmp_path, tiny_spec, monkeypatch, caplog
):
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
    with caplog.at_level(logging.INFO, logger="robdml.training"):
        history = train(
            tiny_spec, toy_set(), tmp_path / "resumed.pt", tmp_path / "resumed.ckpt", "cpu"
        )
    assert f"resuming from {tmp_path / 'resumed.ckpt'} after epoch 1\n" in caplog.text
    assert "epoch 1:" not in caplog.text and "epoch 2: mean loss" in caplog.text  # as numbered
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert not (tmp_path / "resumed.ckpt").exists()
    assert (tmp_path / "full.pt").read_bytes() == (tmp_path / "resumed.pt").read_bytes()
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


def recipe_with(tiny_spec, **overrides) -> dict:
    return {**tiny_spec["training"], **overrides}


def test_warm_up_freezes_the_trunks_and_trains_heads_and_proxies(tiny_spec):
    """The Proxy Anchor recipe's warm-up: trunk frozen for `warmup_epochs`, then trained."""
    recipe = recipe_with(tiny_spec, warmup_epochs=1)
    members = [EmbeddingModel(tiny_spec["backbone"], tiny_spec["dataset"]) for _ in range(2)]
    pals = [proxy_anchor_loss(4, tiny_spec["backbone"]["embedding_dim"], recipe) for _ in members]
    optimizer = make_optimizer(members, pals, recipe)
    images, labels = toy_images()
    for epoch, trunk_trains in ((0, False), (1, True)):
        set_epoch(members, optimizer, recipe, epoch)
        optimizer.zero_grad()
        loss = sum(
            pal(m(images.float() / 255), labels) for m, pal in zip(members, pals, strict=True)
        )
        loss.backward()
        for member in members:
            trunk_grads = [p.grad for p in member.trunk.parameters()]
            assert all(g is not None for g in trunk_grads) == trunk_trains
            assert all(p.grad.abs().sum() > 0 for p in member.head.parameters())
        assert all(p.grad.abs().sum() > 0 for pal in pals for p in pal.parameters())


def test_frozen_batchnorm_keeps_its_statistics_while_the_rest_trains(tiny_spec):
    recipe = recipe_with(tiny_spec, freeze_bn=True)
    member = EmbeddingModel(tiny_spec["backbone"], tiny_spec["dataset"])
    pal = proxy_anchor_loss(4, tiny_spec["backbone"]["embedding_dim"], recipe)
    optimizer = make_optimizer([member], [pal], recipe)
    set_epoch([member], optimizer, recipe, 0)
    norms = [m for m in member.trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [n.running_mean.clone() for n in norms]
    member(toy_images()[0].float() / 255)
    assert norms and all(not n.training for n in norms) and member.training
    assert all(torch.equal(b, n.running_mean) for b, n in zip(before, norms, strict=True))
    set_epoch([member], optimizer, recipe_with(tiny_spec, freeze_bn=False), 0)
    member(toy_images()[0].float() / 255)
    assert not all(torch.equal(b, n.running_mean) for b, n in zip(before, norms, strict=True))


def test_proxies_learn_faster_by_the_multiplier_through_the_lr_decay(tiny_spec):
    recipe = recipe_with(tiny_spec, lr=0.001, proxy_lr_multiplier=100, lr_decay_step=2,
                         lr_decay_gamma=0.5)  # fmt: skip
    member = EmbeddingModel(tiny_spec["backbone"], tiny_spec["dataset"])
    pal = proxy_anchor_loss(4, tiny_spec["backbone"]["embedding_dim"], recipe)
    optimizer = make_optimizer([member], [pal], recipe)
    for epoch, factor in ((0, 1.0), (1, 1.0), (2, 0.5), (5, 0.25)):
        set_epoch([member], optimizer, recipe, epoch)
        rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
        assert rates["trunk"] == rates["head"] == pytest.approx(0.001 * factor)
        assert rates["proxies"] == pytest.approx(0.1 * factor)
