"""ImageNet backbones with random weights (tests never download): the embedding contract, and
the message when a backbone's ImageNet weights file is missing (tests/models/test_weights.py: the
files themselves)."""

import copy

import pytest
import torch

from robdml.models import EmbeddingModel, load_model, save_model
from robdml.models.backbones import build_trunk
from robdml.models.weights import MissingWeightsError

ARCHS = ["resnet18", "resnet50", "googlenet"]
IMAGENET = {
    "channels": 3,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "image_size": 64,  # small inputs keep the tests fast; the trunks pool globally
}


def backbone(arch: str, weights: str | None = None) -> dict:
    return {"arch": arch, "embedding_dim": 16, "widths": [], "weights": weights}


@pytest.mark.parametrize("arch", ARCHS)
def test_unit_norm_embeddings_with_input_gradients(arch):
    torch.manual_seed(0)
    model = EmbeddingModel(backbone(arch), IMAGENET).eval()
    images = torch.rand(3, 3, 64, 64, requires_grad=True)
    embeddings = model(images)
    assert embeddings.shape == (3, 16)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    embeddings[:, 0].sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_grey_images_are_repeated_to_rgb():
    model = EmbeddingModel(
        backbone("googlenet"), {**IMAGENET, "channels": 1, "mean": [0.5], "std": [0.25]}
    )
    assert model.eval()(torch.rand(2, 1, 64, 64)).shape == (2, 16)


def test_googlenet_file_round_trip_computes_the_same_function(tmp_path):
    """load_model rebuilds without ImageNet weights: the input scaling that GoogLeNet's
    ImageNet weights need must not depend on how the model was built."""
    spec = {"dataset": IMAGENET, "backbone": backbone("googlenet"), "seed": 0}
    torch.manual_seed(0)
    model = EmbeddingModel(spec["backbone"], IMAGENET).eval()
    save_model(tmp_path / "model.pt", spec, [model], history=[])
    loaded, _ = load_model(tmp_path / "model.pt")
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(loaded(images), model(images))


@pytest.mark.parametrize("arch", ARCHS)
def test_weights_without_their_file_fail_with_a_clear_message_and_never_download(
    arch, tmp_path, monkeypatch
):
    """Training jobs only read the file rule fetch_weights wrote: none is one line naming it
    and how to fetch it, and nothing is downloaded, even with an empty TORCH_HOME."""

    def no_download(url, *args, **kwargs):
        raise AssertionError(f"{url} was downloaded")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    missing = tmp_path / "weights" / f"{arch}.pth"
    with pytest.raises(MissingWeightsError) as error:
        build_trunk(backbone(arch, "IMAGENET1K_V1"), 3, 224, weights_file=missing)
    message = str(error.value)
    assert message.startswith(f"{missing}: no such weights file ({arch} IMAGENET1K_V1")
    assert "snakemake --cores 1 fetch_weights" in message and "\n" not in message
    with pytest.raises(MissingWeightsError, match="no weights file was given"):
        build_trunk(backbone(arch, "IMAGENET1K_V1"), 3, 224)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_small_cnn_pools_before_relu_with_the_same_values_and_gradients(training, channels_last):
    """The trunk's order (pool, then ReLU) is a speed-up only: against ReLU-then-pool, the
    same embeddings and input gradients, bit for bit, with BN in either mode."""
    grey = {"channels": 1, "mean": [0.5], "std": [0.25], "image_size": 16}
    torch.manual_seed(0)
    model = EmbeddingModel({**backbone("small_cnn"), "widths": [8, 16]}, grey)
    reference = copy.deepcopy(model)
    layers = list(reference.trunk)
    for index, layer in enumerate(layers):
        if isinstance(layer, torch.nn.MaxPool2d):  # put each ReLU back in front of its pool
            reference.trunk[index], reference.trunk[index + 1] = layers[index + 1], layer
    assert [type(m).__name__ for m in reference.trunk][:4] == [
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
    ]  # fmt: skip
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    results = []
    for net in (model, reference):
        net.train(training).to(memory_format=memory_format)
        images = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(1))
        images = images.contiguous(memory_format=memory_format).requires_grad_(True)
        embeddings = net(images)
        (gradient,) = torch.autograd.grad((embeddings * torch.linspace(-1, 1, 16)).sum(), images)
        results.append((embeddings.detach(), gradient))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
