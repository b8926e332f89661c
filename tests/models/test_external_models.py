"""Models trained elsewhere, wrapped in the model contract (robdml.models.external): images in
[0, 1], normalisation inside forward, unit embeddings; every way an entry can be wrong stops
with one line naming the entry and the problem."""

import hashlib
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import REPO
from robdml.config import (
    ConfigError,
    check_external_files,
    load_schema,
    read_config,
    validate_config,
)
from robdml.data.prepared import SPLIT_FORMAT
from robdml.models import load_model
from robdml.models.external import (
    ExternalModelError,
    build_external,
    check_external,
    import_external,
)

FACTORIES = """
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 8)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


class Seen(nn.Module):  # records what it is given
    def forward(self, x):
        self.seen = x
        return x.flatten(start_dim=1)


class Dropout(nn.Module):  # dropout that ignores eval mode
    def forward(self, x):
        return F.dropout(x.flatten(start_dim=1), 0.5, training=True)


class BatchStats(nn.Module):  # normalises with the batch's statistics even in eval mode
    def forward(self, x):
        x = x.flatten(start_dim=1)
        return (x - x.mean(dim=0)) / (x.std(dim=0) + 1e-3)


def net():
    torch.manual_seed(0)
    return Net()


def seen():
    return Seen()


def dropout():
    return Dropout()


def batch_stats():
    return BatchStats()


def not_a_module():
    return "a string"


def raises():
    raise RuntimeError("no GPU here")


def one_d():
    return nn.Flatten(start_dim=0)
"""
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


@pytest.fixture
def factories(tmp_path):
    path = tmp_path / "factories.py"
    path.write_text(FACTORIES)
    return path


def entry(factories, function, weights=None):
    return {"factory": f"{factories}:{function}", "weights": weights, "mean": MEAN, "std": STD}


def images(n=4):
    return torch.rand(n, 3, 6, 6, generator=torch.Generator().manual_seed(1))


def test_the_wrapper_normalises_inside_forward_and_returns_unit_embeddings(factories):
    model = build_external("seen", entry(factories, "seen"))
    x = images()
    embeddings = model(x)
    torch.testing.assert_close(model.module.seen, (x - 0.5) / 0.25)
    torch.testing.assert_close(embeddings, F.normalize(((x - 0.5) / 0.25).flatten(1), dim=1))
    assert not model.training
    check_external("seen", model, x, embedding_dim=3 * 6 * 6)


def test_weights_are_read_weights_only_and_loaded_strictly(factories, tmp_path):
    source = build_external("net", entry(factories, "net")).module
    for parameter in source.parameters():
        nn.init.constant_(parameter, 0.1)
    weights = tmp_path / "net.pt"
    torch.save(source.state_dict(), weights)
    loaded = build_external("net", entry(factories, "net", str(weights)))
    assert all((p == 0.1).all() for p in loaded.module.parameters())
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": nn.Linear(2, 2)}, pickled)  # a module object: not weights-only
    with pytest.raises(
        ExternalModelError,
        match=r"^external model 'net': .*pickled.pt: not a safe state dict: it asks to call torch",
    ):
        build_external("net", entry(factories, "net", str(pickled)))
    other = tmp_path / "other.pt"
    torch.save(nn.Linear(2, 2).state_dict(), other)
    with pytest.raises(ExternalModelError, match=r"other.pt does not fit the factory's model"):
        build_external("net", entry(factories, "net", str(other)))
    with pytest.raises(ExternalModelError, match=r"weights file .*missing.pt does not exist"):
        build_external("net", entry(factories, "net", str(tmp_path / "missing.pt")))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("no_colon", r"factory 'no_colon' is not 'path/to/file.py:function'"),
        ("{dir}/absent.py:net", r"factory file .*absent.py does not exist"),
        ("{file}:missing", r"factories.py has no function 'missing'"),
        ("{broken}:net", r"importing .*broken.py failed: SyntaxError"),
        ("{file}:raises", r"factories.py:raises raised RuntimeError: no GPU here"),
        ("{file}:not_a_module", r"returned a str, not a torch.nn.Module"),
    ],
)
def test_a_bad_factory_stops_with_one_line_naming_the_entry(factories, factory, message):
    broken = factories.parent / "broken.py"
    broken.write_text("def net(:\n")
    spec = factory.format(dir=factories.parent, file=factories, broken=broken)
    with pytest.raises(ExternalModelError, match=rf"^external model 'mine': .*{message}") as error:
        build_external("mine", {"factory": spec, "weights": None, "mean": MEAN, "std": STD})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("function", "dim", "message"),
    [
        ("net", 16, r"8-d embeddings, the entry says 16"),
        ("one_d", None, r"embeddings of shape \(432,\) for 4 images \(expected \[4, D\]\)"),
        ("dropout", None, r"two passes in eval mode give different embeddings"),
        ("batch_stats", None, r"an image's embedding depends on its batch in eval mode"),
    ],
)
def test_a_model_that_breaks_the_contract_is_refused_before_any_attack(
    factories, function, dim, message
):
    model = build_external(function, entry(factories, function))
    with pytest.raises(ExternalModelError, match=rf"^external model '{function}': {message}"):
        check_external(function, model, images(), embedding_dim=dim)
    check_external("net", build_external("net", entry(factories, "net")), images(), 8)


def test_an_imported_model_file_loads_as_the_same_wrapped_model(factories, tmp_path):
    """import_external checks the model on test images and writes one model file; every job
    loads it with load_model as it loads a trained model, with the same embeddings (its
    weights come from the file, not from the factory's initialisation)."""
    test_images = (images(10) * 255).to(torch.uint8)
    trained = build_external("net", entry(factories, "net")).module
    for parameter in trained.parameters():
        nn.init.normal_(parameter, generator=torch.Generator().manual_seed(2))
    weights = tmp_path / "net.pt"
    torch.save(trained.state_dict(), weights)
    spec = entry(factories, "net", str(weights)) | {
        "image_size": 6,
        "dataset": "d",
        "backbone": "b",
    }
    path = tmp_path / "model.pt"
    import_external("net", spec, test_images, path)
    loaded, model_spec = load_model(path)
    expected = build_external("net", spec)
    x = test_images.float() / 255
    assert torch.equal(loaded(x), expected(x))
    assert not loaded.training
    assert model_spec["external"] == "net" and model_spec["mean"] == MEAN
    assert model_spec["factory_sha256"] == hashlib.sha256(factories.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="one external model; there is no member 1"):
        load_model(path, member=1)


def test_the_import_script_stops_a_bad_model_with_one_line_and_writes_nothing(factories, tmp_path):
    data = tmp_path / "test.pt"
    torch.save({"format": SPLIT_FORMAT, "images": (images(10) * 255).to(torch.uint8)}, data)
    model = tmp_path / "model.pt"
    spec = entry(factories, "dropout") | {"image_size": 6, "dataset": "d", "backbone": "b"}
    run = subprocess.run(
        [sys.executable, str(REPO / "src/import_external.py"), "--name", "dropout",
         "--entry", json.dumps(spec), "--data", str(data), "--model", str(model)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: external model 'dropout': two passes in eval mode give different embeddings "
        "(dropout or other randomness active in eval mode)"
    ]
    assert not model.exists()


EXTERNAL = {
    "factory": "examples/external_model/factory.py:build",
    "mean": [0.2], "std": [0.35], "image_size": 16, "dataset": "glyphs", "backbone": "cnn",
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, None),
        ({"name": "vanilla"}, r"external_models.vanilla: the name is a defense's"),
        (
            {"dataset": "cub200"},
            r"external_models.mine.dataset: 'cub200' is not selected in "
            r"run.datasets \(selected: glyphs\)",
        ),
        ({"backbone": "mlp"}, r"external_models.mine.backbone: 'mlp' is not selected"),
        ({"mean": [0.5, 0.5, 0.5]}, r"external_models.mine.mean: 3 values for the 1 channels"),
        (
            {"image_size": 224},
            r"external_models.mine.image_size: 224, but glyphs's test images "
            r"are 16 px",
        ),
        ({"factory": "factory.py"}, r"external_models.mine.factory: 'factory.py' does not match"),
        ({"colour": "red"}, r"external_models.mine: .*'colour'"),
    ],
)
def test_an_external_model_entry_is_checked_with_one_line_naming_its_key(change, message):
    change = dict(change)
    name = change.pop("name", "mine")
    config = read_config(REPO / "config/demo.yaml")
    config["external_models"] = {name: EXTERNAL | change}
    if message is None:
        resolved = validate_config(config, load_schema(), "overlay")
        assert resolved["external_models"]["mine"]["backbone"] == "cnn"
        return
    with pytest.raises(ConfigError, match=message) as error:
        validate_config(config, load_schema(), "overlay")
    assert "\n" not in str(error.value)


def test_missing_factory_or_weights_files_are_named_when_the_workflow_plans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {"external_models": {"mine": EXTERNAL | {"weights": "results/external/w.pt"}}}
    with pytest.raises(ConfigError, match=r"^overlay: external_models.mine.factory: no file "):
        check_external_files(config, "overlay")  # relative to the working directory
    config["external_models"]["mine"]["factory"] = (
        f"{REPO}/examples/external_model/factory.py:build"
    )
    with pytest.raises(ConfigError, match=r"external_models.mine.weights: no file results/"):
        check_external_files(config, "overlay")
