"""The GPU fast path (robdml.fast_path) is exactly off on CPU: a CPU job's results are
bit-identical whatever the config's `gpu` section says (the `cpu` section's settings,
channels_last and fold_batch_norm, aside). Forced on CPU (no GPU here), its channels_last
layout and its autocast (CPU's), and the CPU's batch-norm folding, compute what the plain path
does, up to rounding."""

import contextlib
import copy

import pytest
import torch

from conftest import TINY_CNN, toy_images
from robdml.attacks.runner import attack_test_set
from robdml.data.datasets import InMemoryImages
from robdml.defenses import StepContext, build_defense
from robdml.fast_path import GPU_DEFAULTS, FastPath, configure_fast_path
from robdml.losses import proxy_anchor_loss
from robdml.models import build_members, load_model
from robdml.runtime import generator
from robdml.training import make_optimizer, train, train_step

ALL_ON = dict.fromkeys(GPU_DEFAULTS, True)
ALL_OFF = dict.fromkeys(GPU_DEFAULTS, False)
CPU = torch.device("cpu")
MI = {"method": "mi", "steps": 4, "step_fraction": 0.25, "schedule": "apgd", "restarts": 1,
      "perturbed_fraction": 1.0, "kmeans_n_init": 1, "refit_every": 2, "labels": "true_classes",
      "scale": 32}  # fmt: skip


@pytest.fixture
def two_step_spec(tiny_spec):
    """PGD-AT (training-time PGD included), one epoch of two batches."""
    tiny_spec["training"] |= {"epochs": 1, "batch_size": 16}
    tiny_spec["defense"] = {
        "method": "pgd_at",
        "attack": {"eps_255": 8, "steps": 2, "step_fraction": 0.5},
        "clean_weight": 0.0,
    }
    return tiny_spec


def trained_state(spec, directory, fast_path) -> dict:
    images, labels = toy_images()
    model_path = directory / "model.pt"
    train_set = InMemoryImages(images, labels, None)
    train(spec, train_set, model_path, directory / "c.pt", CPU, fast_path=fast_path)
    return load_model(model_path)[0].state_dict()


def attacked(model, fast_path) -> dict:
    images, labels = toy_images()
    return attack_test_set(model, images, labels, MI, [16.0], 0, 16, CPU, fast_path)[0]


def test_on_cpu_only_channels_last_can_be_on_and_nothing_process_wide_is_set(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert configure_fast_path("cpu") == FastPath(CPU)
    assert configure_fast_path("cpu", ALL_ON) == FastPath(CPU, channels_last=True)
    fast_path = configure_fast_path("cpu", {**ALL_ON, "channels_last": False})
    assert fast_path == FastPath(CPU)
    assert torch.backends.cudnn.benchmark is False
    images = torch.rand(2, 1, 4, 4)
    assert fast_path.batch(images) is images and fast_path.resident(images) is images
    assert isinstance(fast_path.autocast(), contextlib.nullcontext)
    assert fast_path.loader_options(4) == {"pin_memory": False, "persistent_workers": False}


def test_on_cuda_everything_is_on_by_default_and_each_setting_switches_off(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert configure_fast_path("cuda") == FastPath(torch.device("cuda"), **ALL_ON)
    assert torch.backends.cudnn.benchmark is True
    fast_path = configure_fast_path(
        "cuda", {**ALL_ON, "autocast_bf16": False, "cudnn_benchmark": False}
    )
    assert (fast_path.autocast_bf16, fast_path.channels_last) == (False, True)
    assert torch.backends.cudnn.benchmark is False
    assert fast_path.loader_options(0) == {"pin_memory": True, "persistent_workers": False}
    assert fast_path.loader_options(2) == {"pin_memory": True, "persistent_workers": True}


def test_cpu_training_and_attack_are_bit_identical_with_the_gpu_settings_on_and_off(
    tmp_path, two_step_spec
):
    """bf16 autocast and cuDNN's autotuner never apply on CPU."""
    states, gpu_only = {}, {**ALL_ON, "channels_last": False}
    for name, settings in (("on", gpu_only), ("off", ALL_OFF)):
        (tmp_path / name).mkdir()
        fast_path = configure_fast_path("cpu", settings)
        states[name] = trained_state(two_step_spec, tmp_path / name, fast_path)
    for key, value in states["on"].items():
        assert torch.equal(value, states["off"][key]), key
    model, _ = load_model(tmp_path / "on/model.pt")
    on = attacked(model, configure_fast_path("cpu", gpu_only))
    off = attacked(model, configure_fast_path("cpu", ALL_OFF))
    assert torch.equal(on["images"], off["images"])
    assert on["objective_adversarial"] == off["objective_adversarial"]


def test_channels_last_computes_what_the_plain_layout_computes(tmp_path, two_step_spec):
    """Forced on CPU: weights and batches in channels_last train and attack as the plain layout
    does, up to float rounding."""
    channels_last = FastPath(CPU, channels_last=True)
    states = {}
    for name, fast_path in (("plain", FastPath(CPU)), ("channels_last", channels_last)):
        (tmp_path / name).mkdir()
        states[name] = trained_state(two_step_spec, tmp_path / name, fast_path)
    for key, value in states["plain"].items():
        torch.testing.assert_close(states["channels_last"][key], value, atol=1e-4, rtol=1e-4)
    model, _ = load_model(tmp_path / "plain/model.pt")
    plain = attacked(model, FastPath(CPU))
    assert attacked(model, channels_last)["objective_adversarial"] == pytest.approx(
        plain["objective_adversarial"], abs=1e-3
    )


def test_folding_batch_norm_crafts_with_the_same_function(tiny_spec):
    """Each Conv2d -> BatchNorm2d pair of the small CNN becomes one convolution in the crafting
    model (embeddings and input gradients equal to the plain model's up to rounding), and
    the attack still raises its objective."""
    torch.manual_seed(0)
    (plain,) = build_members(tiny_spec, 1)
    for norm in [m for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)]:
        norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2)  # not identity
        norm.weight.data.uniform_(0.5, 2), norm.bias.data.uniform_(-1, 1)
    plain.eval()
    fast_path = configure_fast_path("cpu", {"fold_batch_norm": True})
    folded = fast_path.crafting_model(copy.deepcopy(plain))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) == 2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    images = (toy_images()[0][:8] / 255).requires_grad_(True)
    gradients = []
    for net in (plain, folded):
        embeddings = net(images)
        gradients.append(torch.autograd.grad(embeddings[:, 0].sum(), images)[0])
        torch.testing.assert_close(embeddings, plain(images), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gradients[1], gradients[0], atol=1e-5, rtol=1e-4)
    result = attacked(copy.deepcopy(plain), fast_path)
    assert result["objective_adversarial"] > result["objective_clean"]


def test_under_bf16_autocast_weights_proxies_and_embeddings_stay_fp32(two_step_spec):
    """Forced on CPU (CPU autocast): a PGD-AT step keeps fp32 weights and Proxy Anchor proxies
    (the loss casts its proxies to the embeddings' dtype) and a loss close to fp32's, and the
    attack still raises its objective."""
    images, labels = toy_images()
    defense = build_defense(two_step_spec["defense"])
    mask = torch.ones(len(labels), 1, dtype=torch.bool)
    losses, bf16 = {}, FastPath(CPU, autocast_bf16=True, channels_last=True)
    for name, fast_path in (("plain", FastPath(CPU)), ("bf16", bf16)):
        (model,) = [fast_path.prepare_model(m) for m in build_members(two_step_spec, 1)]
        pal = proxy_anchor_loss(4, TINY_CNN["embedding_dim"], two_step_spec["training"])
        optimizer = make_optimizer([model], [pal], two_step_spec["training"])
        step = StepContext([model], [pal], generator(0, 0))
        losses[name] = [
            train_step(defense, step, optimizer, images / 255, labels, mask, 10, fast_path).item()
            for _ in range(2)
        ]
    parameters = [*model.parameters(), *pal.parameters()]  # the last run's: bf16
    assert all(p.dtype == torch.float32 and p.isfinite().all() for p in parameters)
    assert losses["bf16"] == pytest.approx(losses["plain"], rel=0.05)
    with bf16.autocast():
        assert model(images[:2] / 255).dtype == torch.float32
    result = attacked(model, bf16)
    assert result["objective_adversarial"] > result["objective_clean"]
