"""Models: [0, 1] images in, unit-norm embeddings out; ensembles are models; files round-trip."""

import pytest
import torch

from conftest import TINY_CNN, TINY_DATASET
from robdml.models import EmbeddingModel, Ensemble, build_members, load_model, save_model


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
