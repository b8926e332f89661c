"""Models: [0, 1] images in, unit-norm embeddings out; ensembles are models; files round-trip."""

import pytest
import torch

from conftest import TINY_CNN, TINY_DATASET
from robdml.losses import proxy_anchor_loss
from robdml.models import (
    EmbeddingModel,
    Ensemble,
    build_members,
    load_model,
    member_generator,
    save_model,
)


def test_embeddings_are_unit_norm_and_differentiable_in_the_input():
    model = EmbeddingModel(TINY_CNN, TINY_DATASET).eval()
    images = torch.rand(5, 1, 8, 8, requires_grad=True)
    embeddings = model(images)
    assert embeddings.shape == (5, TINY_CNN["embedding_dim"])
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(5))
    embeddings.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_ensemble_is_the_renormalised_mean_of_its_members():
    members = [EmbeddingModel(TINY_CNN, TINY_DATASET).eval() for _ in range(3)]
    images = torch.rand(4, 1, 8, 8)
    expected = torch.nn.functional.normalize(sum(m(images) for m in members) / 3, dim=1)
    torch.testing.assert_close(Ensemble(members).eval()(images), expected)


def test_members_start_from_distinct_seeds_and_member_zero_is_the_single_model(tiny_spec):
    single = build_members(tiny_spec, 1)[0]
    first, second = build_members(tiny_spec, 2)
    torch.testing.assert_close(single.head.weight, first.head.weight)
    assert not torch.equal(first.head.weight, second.head.weight)


def test_no_two_seed_member_pairs_share_trunk_head_or_proxies(tiny_spec):
    """Keyed by (seed, member): member 1 at seed 0 is not member 0 at seed 1 (a seed + member
    offset would make ensemble seeds share initialisations)."""
    trunks, heads, proxies = {}, {}, {}
    for seed in range(3):
        members = build_members({**tiny_spec, "seed": seed}, 3)
        for index, member in enumerate(members):
            trunks[seed, index] = next(member.trunk.parameters()).detach().flatten()
            heads[seed, index] = member.head.weight.detach().flatten()
            pal = proxy_anchor_loss(
                5, 8, tiny_spec["training"], member_generator(seed, index, "proxies")
            )
            proxies[seed, index] = pal.proxies.detach().flatten()
    for drawn in (trunks, heads, proxies):
        values = list(drawn.values())
        for a in range(len(values)):
            for b in range(a + 1, len(values)):
                assert not torch.equal(values[a], values[b])


def test_head_is_initialised_as_the_proxy_anchor_code_does(tiny_spec):
    """Kaiming normal with fan-out (std sqrt(2 / embedding_dim)) and zero bias; PyTorch's
    default Linear init (std 1 / sqrt(3 fan_in), non-zero bias) would fail both checks."""
    tiny_spec = {**tiny_spec, "backbone": {**tiny_spec["backbone"], "embedding_dim": 64}}
    (member,) = build_members(tiny_spec, 1)
    weight = member.head.weight.detach()
    expected_std = (2 / weight.shape[0]) ** 0.5
    assert abs(weight.std().item() / expected_std - 1) < 0.2
    assert torch.equal(member.head.bias.detach(), torch.zeros_like(member.head.bias))


def test_model_file_round_trips_single_and_ensemble(tmp_path, tiny_spec):
    images = torch.rand(3, 1, 8, 8)
    for n_members in (1, 3):
        members = [m.eval() for m in build_members(tiny_spec, n_members)]
        path = tmp_path / f"model{n_members}.pt"
        save_model(path, tiny_spec, members, history=[])
        loaded, spec = load_model(path)
        assert spec == tiny_spec
        assert isinstance(loaded, Ensemble) == (n_members > 1)
        reference = members[0] if n_members == 1 else Ensemble(members).eval()
        torch.testing.assert_close(loaded(images), reference(images))


def test_an_ensemble_member_loads_alone(tmp_path, tiny_spec):
    members = [m.eval() for m in build_members(tiny_spec, 3)]
    save_model(tmp_path / "ensemble.pt", tiny_spec, members, history=[])
    images = torch.rand(2, 1, 8, 8)
    second, _ = load_model(tmp_path / "ensemble.pt", member=1)
    torch.testing.assert_close(second(images), members[1](images))
    with pytest.raises(ValueError, match="no member 3"):
        load_model(tmp_path / "ensemble.pt", member=3)
