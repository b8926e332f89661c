"""ImageNet weights as files (robdml.models.weights, rule fetch_weights): fetched and verified
against the sha256 prefix in torchvision's file name, written atomically, copied from
torch.hub's cache when it has them, and read by training without any download. No real
weights exist here: the files are random state dicts (or bytes) named as torchvision names
them, served from 127.0.0.1 or put in a temporary TORCH_HOME."""

import hashlib
import json
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torchvision

from conftest import REPO
from robdml.config import load_config
from robdml.data.download import ChecksumError, DownloadError
from robdml.models import EmbeddingModel, load_model, save_model
from robdml.models.backbones import PRETRAINED_KWARGS, build_trunk, torchvision_classifier
from robdml.models.weights import (
    WeightsError,
    fetch_file,
    fetch_weights,
    hub_checkpoints,
    torchvision_weights,
)
from robdml.specs import train_spec

IMAGENET = {"channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
IMAGENET["image_size"] = 64  # small inputs keep the tests fast; the trunks pool globally


class QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        QuietHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """(folder served over HTTP from 127.0.0.1, its base url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    QuietHandler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def hashed_name(stem: str, data: bytes) -> str:
    """torchvision's naming: the first 8 hex digits of the sha256 in the file name."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


def test_a_download_is_verified_and_appears_only_complete(served, tmp_path):
    folder, base = served
    data = b"weights " * 1000
    (folder / hashed_name("tiny", data)).write_bytes(data)
    destination = tmp_path / "weights" / "tiny" / "IMAGENET1K_V1.pth"
    fetch_file(f"{base}/{hashed_name('tiny', data)}", destination, tmp_path / "empty_cache")
    assert destination.read_bytes() == data
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left


def test_a_wrong_hash_is_one_line_and_leaves_no_file(served, tmp_path):
    folder, base = served
    (folder / "tiny-deadbeef.pth").write_bytes(b"not the weights the name promises")
    destination = tmp_path / "weights" / "IMAGENET1K_V1.pth"
    with pytest.raises(ChecksumError) as error:
        fetch_file(f"{base}/tiny-deadbeef.pth", destination, tmp_path / "empty_cache")
    message = str(error.value)
    assert "\n" not in message and str(destination) in message
    assert "sha256 expected to start with deadbeef" in message
    assert list(destination.parent.iterdir()) == []  # torch.hub's temporary file is deleted too


def test_an_unreachable_file_is_one_line_and_leaves_no_file(served, tmp_path):
    """rule fetch_weights prints a DownloadError as one line (not urllib's traceback)."""
    _, base = served
    destination = tmp_path / "weights" / "IMAGENET1K_V1.pth"
    with pytest.raises(DownloadError) as error:
        fetch_file(f"{base}/tiny-deadbeef.pth", destination, tmp_path / "empty_cache")
    assert str(error.value) == f"{base}/tiny-deadbeef.pth: HTTP Error 404: File not found"
    assert list(destination.parent.iterdir()) == []


def test_a_url_without_a_hash_is_refused_before_downloading(served, tmp_path):
    _, base = served
    with pytest.raises(WeightsError, match="carries no sha256 prefix"):
        fetch_file(f"{base}/tiny.pth", tmp_path / "w.pth", tmp_path)
    assert QuietHandler.requests == []


def test_torch_hubs_cache_is_copied_without_network(served, tmp_path):
    """A user who has loaded the weights before needs no network: the url is never asked."""
    _, base = served
    data = b"cached weights"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / hashed_name("tiny", data)).write_bytes(data)
    destination = tmp_path / "weights" / "IMAGENET1K_V1.pth"
    fetch_file(f"{base}/{hashed_name('tiny', data)}", destination, cache)
    assert destination.read_bytes() == data and QuietHandler.requests == []
    assert list(destination.parent.iterdir()) == [destination]


def test_fetch_weights_reads_torchvisions_enum_and_torch_home(tmp_path, monkeypatch):
    """resnet18 IMAGENET1K_V1 resolves to torchvision's url; its file in $TORCH_HOME's hub
    cache is used (here a fake one, whose hash cannot match: refused, nothing written)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision_weights("resnet18", "IMAGENET1K_V1").url
    assert url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    cache = hub_checkpoints()
    assert cache == tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet18-f37072fd.pth").write_bytes(b"a corrupted copy")
    destination = tmp_path / "weights" / "resnet18" / "IMAGENET1K_V1.pth"
    with pytest.raises(ChecksumError, match=r"resnet18-f37072fd\.pth \(torch\.hub's cache"):
        fetch_weights("resnet18", "IMAGENET1K_V1", destination)
    assert list(destination.parent.iterdir()) == []


def test_fetch_weights_copies_a_matching_cached_file(tmp_path, monkeypatch):
    data = b"the weights"
    url = f"https://download.pytorch.org/models/{hashed_name('resnet18', data)}"
    weights = torchvision_weights("resnet18", "IMAGENET1K_V1")
    monkeypatch.setattr(weights.value, "url", url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub_checkpoints().mkdir(parents=True)
    (hub_checkpoints() / hashed_name("resnet18", data)).write_bytes(data)
    fetch_weights("resnet18", "IMAGENET1K_V1", tmp_path / "w" / "IMAGENET1K_V1.pth")
    assert (tmp_path / "w" / "IMAGENET1K_V1.pth").read_bytes() == data


@pytest.mark.parametrize("name", ["IMAGENET1K_V9", "DEFAULT"])
def test_unknown_weights_are_one_line_naming_the_known_ones(name):
    with pytest.raises(WeightsError) as error:
        torchvision_weights("resnet50", name)
    assert f"resnet50: torchvision {torchvision.__version__} has no weights {name!r}" in str(
        error.value
    )
    assert str(error.value).endswith("(known: IMAGENET1K_V1, IMAGENET1K_V2)")


def test_the_fetch_script_fails_with_one_line(tmp_path):
    run = subprocess.run(
        [sys.executable, str(REPO / "src/fetch_weights.py"), "--arch", "resnet50",
         "--weights", "IMAGENET1K_V9", "--out", str(tmp_path / "w.pth")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0
    assert run.stderr.strip().startswith("error: resnet50: torchvision")
    assert len(run.stderr.strip().splitlines()) == 1


def random_imagenet_state(arch: str, seed: int) -> dict:
    """A random state dict shaped as torchvision's IMAGENET1K_V1 file of `arch`."""
    torch.manual_seed(seed)
    kwargs = {**PRETRAINED_KWARGS.get(arch, {}), "num_classes": 1000}
    return torchvision.models.get_model(arch, weights=None, **kwargs).state_dict()


@pytest.fixture
def no_download(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"{url} was downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("arch", ["resnet50", "googlenet"])
def test_a_net_built_from_the_file_is_what_torchvision_builds(
    arch, tmp_path, monkeypatch, no_download
):
    """The same state dict, read by torchvision from its cache and by us from the weights
    file: equal modules (googlenet without its auxiliary heads, transform_input on), equal
    outputs."""
    state = random_imagenet_state(arch, seed=1)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision_weights(arch, "IMAGENET1K_V1").url
    hub_checkpoints().mkdir(parents=True)
    torch.save(state, hub_checkpoints() / url.rsplit("/", 1)[1])  # torchvision reads it as is
    weights_file = tmp_path / "weights" / arch / "IMAGENET1K_V1.pth"
    weights_file.parent.mkdir(parents=True)
    torch.save(state, weights_file)

    reference = torchvision.models.get_model(arch, weights="IMAGENET1K_V1").eval()
    ours = torchvision_classifier(arch, "IMAGENET1K_V1", weights_file).eval()
    assert repr(ours) == repr(reference)
    assert ours.state_dict().keys() == reference.state_dict().keys()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)
    if arch == "googlenet":
        assert ours.aux1 is None and ours.aux2 is None and ours.transform_input
        assert not ours.aux_logits
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), rtol=0, atol=0)


def test_a_model_trained_from_weights_loads_without_them(tmp_path, no_download):
    """The trunk starts from the file's tensors; the saved model holds them, so loading it
    needs no weights file."""
    state = random_imagenet_state("googlenet", seed=2)
    weights_file = tmp_path / "IMAGENET1K_V1.pth"
    torch.save(state, weights_file)
    backbone = {"arch": "googlenet", "embedding_dim": 16, "widths": [], "weights": "IMAGENET1K_V1"}
    model = EmbeddingModel(backbone, IMAGENET, weights_file).eval()
    torch.testing.assert_close(model.trunk.features[0].conv.weight, state["conv1.conv.weight"])
    save_model(tmp_path / "model.pt", {"dataset": IMAGENET, "backbone": backbone, "seed": 0},
               [model], history=[])  # fmt: skip
    weights_file.unlink()
    loaded, spec = load_model(tmp_path / "model.pt")
    assert spec["backbone"]["weights"] == "IMAGENET1K_V1"
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))


def test_a_trunk_without_weights_reads_no_file(tmp_path, no_download):
    trunk, _ = build_trunk({"arch": "resnet18", "widths": [], "weights": None}, 3, 32,
                           weights_file=tmp_path / "absent.pth")  # fmt: skip
    assert sum(p.numel() for p in trunk.parameters()) > 0


@pytest.mark.parametrize("given", [True, False])
def test_training_without_its_weights_file_stops_with_one_line(tmp_path, given):
    """Before any work (the data file does not even exist): which file, how to fetch it."""
    paper = load_config()
    spec = train_spec(paper, "cub200", "resnet50", "vanilla", 0)
    missing = tmp_path / "weights" / "resnet50" / "IMAGENET1K_V1.pth"
    run = subprocess.run(
        [sys.executable, str(REPO / "src/train.py"), "--spec", json.dumps(spec),
         "--data", str(tmp_path / "train.pt"), "--model", str(tmp_path / "model.pt"),
         "--checkpoint", str(tmp_path / "checkpoint.pt")]
        + (["--weights", str(missing)] if given else []),
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    if given:
        assert lines[0].startswith(
            f"error: {missing}: no such weights file (resnet50 IMAGENET1K_V1"
        )
        assert "`snakemake --cores 1 fetch_weights`" in lines[0]
        assert (
            f"`python src/fetch_weights.py --arch resnet50 --weights IMAGENET1K_V1 --out {missing}`"
            in lines[0]
        )
    else:
        assert "no weights file was given" in lines[0]


def test_specs_name_the_weights_version():
    """A training spec names the weights version a trunk starts from (None: from scratch), so
    changing it retrains; where the file lies is not part of it."""
    paper = load_config()
    assert train_spec(paper, "cub200", "resnet50", "vanilla", 0)["backbone"] == {
        "arch": "resnet50", "embedding_dim": 512, "widths": [], "weights": "IMAGENET1K_V1"
    }  # fmt: skip
    demo = load_config(REPO / "config/demo.yaml")
    assert train_spec(demo, "glyphs", "cnn", "vanilla", 0)["backbone"] == {
        "arch": "small_cnn", "embedding_dim": 64, "widths": [16, 32, 64], "weights": None
    }  # fmt: skip
