"""robdml as a library and a command (robdml.api, robdml.cli): `robdml.evaluate` gives exactly
the numbers of the workflow's attack jobs on the same external model; it takes a tensor, a
directory of JPEGs or a DataLoader; the versioned suites are their configs' suites; the
command writes the card and stops bad inputs with one line."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

import robdml
from conftest import REPO, toy_images
from robdml import cli
from robdml.config import load_config
from robdml.data.prepared import save_split
from robdml.fast_path import configure_fast_path
from robdml.jobs import attack_jobs
from robdml.models.external import import_external
from robdml.specs import attack_job_spec, evaluation_spec, fast_path_options
from robdml.suites import FROZEN, SUITES, load_suite, suite_from_config
from robdml.test_set import as_test_set

FACTORY = REPO / "examples/external_model/factory.py"
ENTRY = {"mean": [0.5], "std": [0.25]}


def glyph_cnn(weights_path=None):
    """The worked example's GlyphCNN (plain PyTorch), seeded random weights, saved if asked."""
    spec = importlib.util.spec_from_file_location("glyph_factory", FACTORY)
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)
    torch.manual_seed(0)
    model = factory.build().eval()
    if weights_path:
        torch.save(model.state_dict(), weights_path)
    return model


@pytest.mark.parametrize("name", list(SUITES))
def test_each_versioned_suite_is_its_configs_suite(name):
    """A config's suite changed without a new version would silently change what a published
    'standard-v2' number means."""
    config = load_config(REPO / "config" / SUITES[name])
    assert load_suite(name) == json.loads(json.dumps(suite_from_config(config, name)))


@pytest.mark.parametrize("name", FROZEN)
def test_an_earlier_suite_version_still_loads_and_means_what_it_meant(name):
    """v1 predates the CPU fast path's batch-norm folding: loading it crafts without it."""
    suite = load_suite(name)
    assert suite["name"] == name and "fold_batch_norm" not in suite["fast_path"]["cpu"]
    assert not configure_fast_path("cpu", suite["fast_path"]["cpu"]).fold_batch_norm


def test_evaluate_gives_the_workflow_attack_jobs_numbers_on_the_same_model(tmp_path):
    """The worked example's route (an external-model entry imported, the attack jobs run as
    the rule runs src/attack.py) and `robdml.evaluate` on the same weights and test set: every
    record's metrics equal, clean, white-box and the breaking-eps probe."""
    images, labels = toy_images(n_classes=4, per_class=6, size=16)
    weights = tmp_path / "weights.pt"
    model = glyph_cnn(weights)
    entry = {"factory": f"{FACTORY}:build", "weights": str(weights), **ENTRY}
    import_external("glyph", entry, images, tmp_path / "model.pt")
    save_split(tmp_path / "test.pt", images, labels, [f"c{i}" for i in range(4)], {})
    config = load_config(REPO / "config/demo.yaml")
    config["evaluation"]["eps_255"] = [8]
    workflow = []
    for job in attack_jobs(config):
        spec = attack_job_spec(config, "glyphs", "cnn", "vanilla", 0, job)
        run = subprocess.run(
            [sys.executable, str(REPO / "src/attack.py"), "--job", json.dumps(spec),
             "--evaluation", json.dumps(evaluation_spec(config)),
             "--ids", json.dumps({"dataset": "test set", "backbone": "external",
                                  "defense": "glyph", "seed": 0}),
             "--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test.pt"),
             "--metrics", str(tmp_path / f"{job}.json"), "--sets", str(tmp_path / job),
             "--progress", str(tmp_path / f"{job}.progress"), "--device", "cpu",
             *fast_path_options(config).split(), "--threads", "1"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        workflow += json.loads((tmp_path / f"{job}.json").read_text())["records"]
    result = robdml.evaluate(
        model, images, labels, eps_255=(8,), suite="demo-v2", device="cpu", threads=1,
        name="glyph", **ENTRY,
    )  # fmt: skip

    def key(record):
        return tuple(record["ids"][k] for k in ("attack", "eps_255", "threat"))

    ours = {key(r): r["metrics"] for r in result.records}
    theirs = {key(r): r["metrics"] for r in workflow}
    assert ours.keys() == theirs.keys() and ("random_target", 64.0, "breaking") in ours
    for unit, metrics in theirs.items():
        assert ours[unit] == metrics, unit
    card = json.loads(result.to_json())
    assert card["suite"] == "demo-v2"
    assert [row["threat_model"] for row in card["results"]] == [
        "clean",
        "label-free",
        "label-aware",
    ]
    label_aware = result.worst_case("label-aware", "nmi", 8)
    assert label_aware["value"] == min(
        theirs[(attack, 8.0, "whitebox")]["nmi"] for attack in ("random_target", "cluster_mi", "mi")
    )
    assert "| 8 | label-aware |" in result.to_markdown()


def test_evaluate_a_resnet18_on_a_directory_of_224px_jpegs_and_the_same_from_a_dataloader(
    tmp_path,
):
    """A torchvision ResNet-18 (random weights) on an ImageFolder directory of JPEGs resized to
    64 px, label-free; a DataLoader of the same images gives the same card."""
    generator = torch.Generator().manual_seed(1)
    for label in range(3):
        (tmp_path / "images" / f"class{label}").mkdir(parents=True)
        for index in range(3):
            pixels = torch.randint(0, 256, (224, 224, 3), generator=generator, dtype=torch.uint8)
            pixels[:, :, label] = 255 - label * 40  # a class-specific tint
            path = tmp_path / "images" / f"class{label}" / f"{index}.jpg"
            Image.fromarray(pixels.numpy()).save(path, quality=90)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=16).eval()
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    common = {"eps_255": (8,), "threat_model": "label_free", "suite": "demo-v2",
              "device": "cpu", "threads": 1, **imagenet}  # fmt: skip
    from_directory = robdml.evaluate(model, tmp_path / "images", image_size=64, **common)
    results = from_directory.card["results"]
    assert [row["threat_model"] for row in results] == ["clean", "label-free"]
    assert results[1]["nmi"]["attack"] in {"random_target", "cluster_mi"}
    assert from_directory.long["eps_255"].max() == 64  # check (a)'s probe ran
    split = as_test_set(tmp_path / "images", image_size=64)
    loader = DataLoader(TensorDataset(split["images"].float() / 255, split["labels"]), 4)
    from_loader = robdml.evaluate(model, loader, **common)
    assert from_loader.card["results"] == results


def test_attack_crafts_on_its_own_copy_and_leaves_the_callers_model_as_it_was():
    """The suite's CPU fast path folds batch norms and changes the layout of the model it
    crafts with: never the caller's."""
    model = glyph_cnn()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    images, labels = toy_images(n_classes=3, per_class=4, size=16)
    adversarial = robdml.attack(
        model, images, labels, attack="random_target", suite="demo-v2", mean=[0.5], std=[0.25],
        channels=1, device="cpu", threads=1,
    )  # fmt: skip
    assert adversarial.shape == images.shape and not torch.equal(adversarial, images)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 3
    after = model.state_dict()
    assert all(torch.equal(after[key], value) for key, value in before.items())
    assert all(v.is_contiguous() for v in after.values())


def write_factory(path, body: str) -> str:
    path.write_text("import torch\nfrom torch import nn\n\n" + body)
    return f"{path}:build"


BAD_MODELS = {
    "wrong output shape": (
        "def build():\n    return nn.Conv2d(3, 4, 3)\n",
        "embeddings of shape (8, 4, 14, 14) for 8 images (expected [8, D])",
    ),
    "dropout in eval mode": (
        "class M(nn.Module):\n    def forward(self, x):\n"
        "        return nn.functional.dropout(x.flatten(1), 0.5, training=True)\n"
        "def build():\n    return M()\n",
        "two passes in eval mode give different embeddings",
    ),
    "batch statistics in eval mode": (
        "def build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8),"
        " nn.BatchNorm1d(8, track_running_stats=False))\n",
        "an image's embedding depends on its batch in eval mode",
    ),
    "non-finite output": (
        "class M(nn.Module):\n    def forward(self, x):\n        return x.flatten(1) / 0\n"
        "def build():\n    return M()\n",
        "non-finite embeddings",
    ),
}


@pytest.fixture
def image_dir(tmp_path):
    images, labels = toy_images(n_classes=3, per_class=4, size=16)
    for index, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        folder = tmp_path / "images" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).convert("RGB").save(folder / f"{index}.png")
    return tmp_path / "images"


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_the_command_stops_a_bad_model_with_one_line(tmp_path, image_dir, capsys, case):
    body, message = BAD_MODELS[case]
    factory = write_factory(tmp_path / "factory.py", body)
    argv = ["evaluate", "--model", factory, "--images", str(image_dir), "--out", "card.json"]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing factory file", "factory file {tmp}/absent.py does not exist"),
        ("missing weights file", "weights file {tmp}/absent.pt does not exist"),
        ("missing image directory", "{tmp}/absent: no such directory of class folders"),
    ],
)
def test_the_command_stops_a_missing_file_with_one_line(tmp_path, image_dir, capsys, case, message):
    factory = write_factory(tmp_path / "factory.py", "def build():\n    return nn.Flatten()\n")
    argv = {"--model": factory, "--images": str(image_dir), "--out": "card.json"}
    if case == "missing factory file":
        argv["--model"] = f"{tmp_path}/absent.py:build"
    elif case == "missing weights file":
        argv["--weights"] = f"{tmp_path}/absent.pt"
    else:
        argv["--images"] = f"{tmp_path}/absent"
    assert cli.main(["evaluate", *sum(argv.items(), ())]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message.format(tmp=tmp_path) in error, error


def test_the_command_end_to_end_writes_the_card_and_an_attack(tmp_path, image_dir):
    """`robdml --help`, then evaluate and attack on the worked example's CNN (3 channels)."""
    example = "import importlib.util\n"
    example += f"spec = importlib.util.spec_from_file_location('f', {str(FACTORY)!r})\n"
    example += "f = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(f)\n"
    example += "def build():\n    torch.manual_seed(0)\n    return f.GlyphCNN(in_channels=3)\n"
    factory = write_factory(tmp_path / "factory.py", example)
    command = [sys.executable, "-m", "robdml.cli"]
    assert "evaluate" in subprocess.run([*command, "--help"], capture_output=True, text=True).stdout
    common = ["--model", factory, "--images", str(image_dir), "--suite", "demo-v2", "--threads",
              "1", "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]  # fmt: skip
    run = subprocess.run(
        [*command, "evaluate", *common, "--eps", "8", "--threat-model", "label_free",
         "--out", str(tmp_path / "card.json"), "--markdown", str(tmp_path / "card.md")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["suite"] == "demo-v2" and card["model"]["defense"] == "factory"
    assert (tmp_path / "card.md").read_text().startswith("# factory (test set, external, seed 0)")
    run = subprocess.run(
        [*command, "attack", *common, "--attack", "random_target", "--eps", "8",
         "--out", str(tmp_path / "adversarial.pt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    saved = torch.load(tmp_path / "adversarial.pt", weights_only=True)
    assert saved["images"].dtype == torch.uint8 and saved["images"].shape == (12, 3, 16, 16)


def test_a_model_with_unit_embeddings_and_no_normalisation_given_runs_as_it_is():
    """So a model the workflow trained gives the workflow's numbers; any other is wrapped."""
    from robdml.api import contract
    from robdml.models.external import ExternalModel

    images, labels = toy_images(size=16)
    split = as_test_set(images, labels)
    unit = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 8), Unit()).eval()
    assert contract(unit, None, None, split, "unit", torch.device("cpu"))[0] is unit
    wrapped, spec = contract(unit, [0.5], [0.25], split, "unit", torch.device("cpu"))
    assert isinstance(wrapped, ExternalModel) and spec["mean"] == [0.5]
    raw = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 8)).eval()
    assert isinstance(
        contract(raw, None, None, split, "raw", torch.device("cpu"))[0], ExternalModel
    )


class Unit(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.normalize(x, dim=1)
