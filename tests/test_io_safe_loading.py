"""The project's torch files, read and written safely (robdml.io): every reader loads
weights-only, so a file that asks to run code when unpickled is refused before anything runs,
and a truncated one is refused too, each with one line naming the file and how to rebuild it;
every file the project writes reads back that way; a full disk leaves nothing behind; a written
file has the permissions the umask gives."""

import errno
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import REPO, TINY_DATASET, toy_images
from robdml.adversarial import AdversarialSetError, load_adversarial_set, save_adversarial_set
from robdml.attacks.runner import attack_test_set
from robdml.config import read_config
from robdml.data.datasets import InMemoryImages
from robdml.data.image_files import load_index, save_index
from robdml.data.prepared import load_split, save_split
from robdml.defenses import DEFENSES
from robdml.io import DiskFullError, UnreadableFileError, atomic_write, torch_save
from robdml.models import load_model
from robdml.models.external import ExternalModelError, build_external
from robdml.models.storage import read_model_file
from robdml.models.weights import WeightsError, read_weights
from robdml.training import load_checkpoint, train


class RunsCode:
    """What a malicious file holds: unpickling it runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious(path: Path, marker: Path) -> Path:
    """A torch file that claims to be a model and holds a RunsCode."""
    torch.save({"format": "robdml-model/1", "members": [RunsCode(marker)]}, path)
    return path


def truncated(path: Path) -> Path:
    """The first half of a real torch file (what a copy cut short leaves)."""
    torch_save(path, {"images": torch.zeros(1000, dtype=torch.uint8), "labels": [1, 2, 3]})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def toy_set() -> InMemoryImages:
    return InMemoryImages(*toy_images(), None)


@pytest.fixture
def factory(tmp_path) -> str:
    """An external model's factory (robdml.models.external): a linear map."""
    (tmp_path / "factory.py").write_text(
        "from torch import nn\n\n\ndef net():\n    return nn.Linear(2, 2)\n"
    )
    return f"{tmp_path / 'factory.py'}:net"


# every reader of a torch file: what it reads -> (how, what it raises)
READERS = {
    "model": (load_model, UnreadableFileError),
    "training history": (lambda path: read_model_file(path)["history"], UnreadableFileError),
    "prepared split": (load_split, UnreadableFileError),
    "image index": (load_index, UnreadableFileError),
    "adversarial set": (load_adversarial_set, AdversarialSetError),
    "imagenet weights": (
        lambda path: read_weights("resnet18", "IMAGENET1K_V1", path),
        WeightsError,
    ),
}


def test_the_malicious_file_runs_its_code_when_loaded_unsafely(tmp_path):
    """The payload the tests below feed the readers is live: torch's unsafe load runs it."""
    marker = tmp_path / "ran"
    torch.load(malicious(tmp_path / "model.pt", marker), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("reader", READERS)
def test_a_malicious_file_is_refused_unrun_with_one_line_naming_it(tmp_path, reader):
    load, error = READERS[reader]
    marker = tmp_path / "ran"
    path = malicious(tmp_path / "file.pt", marker)
    with pytest.raises(error) as refused:
        load(path)
    assert not marker.exists()
    message = str(refused.value)
    assert message.startswith(f"{path}: not a safe ") and "\n" not in message
    assert "asks to call posix.system" in message and "nothing was run" in message


@pytest.mark.parametrize("reader", READERS)
def test_a_truncated_file_is_refused_with_one_line_naming_it(tmp_path, reader):
    load, error = READERS[reader]
    path = truncated(tmp_path / "file.pt")
    with pytest.raises(error) as refused:
        load(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: not a readable ") and "\n" not in message
    assert "(truncated or corrupt)" in message


def test_the_rebuild_command_names_the_file_or_its_job(tmp_path):
    model = truncated(tmp_path / "model.pt")
    with pytest.raises(UnreadableFileError, match=f"; rule train or .* --forcerun {model}$"):
        load_model(model)
    sets = tmp_path / "sets"
    (sets / "centroid").mkdir(parents=True)
    adversarial = truncated(sets / "centroid" / "eps8.pt")
    with pytest.raises(AdversarialSetError, match=f"rule attack .* --forcerun {sets}$"):
        load_adversarial_set(adversarial)


def test_malicious_or_truncated_external_weights_are_refused_naming_the_entry(tmp_path, factory):
    marker = tmp_path / "ran"
    for weights, problem in ((malicious(tmp_path / "w.pt", marker), "safe"),
                             (truncated(tmp_path / "t.pt"), "readable")):  # fmt: skip
        entry = {"factory": factory, "weights": str(weights), "mean": [0.0], "std": [1.0]}
        with pytest.raises(ExternalModelError) as refused:
            build_external("net", entry)
        assert str(refused.value).startswith(f"external model 'net': {weights}: not a {problem} ")
    assert not marker.exists()


def test_the_training_curves_script_stops_a_malicious_model_file_with_one_line(tmp_path):
    marker = tmp_path / "ran"
    model = malicious(tmp_path / "model.pt", marker)
    ids = '[{"dataset": "glyphs", "backbone": "cnn", "defense": "vanilla", "seed": 0}]'
    run = subprocess.run(
        [sys.executable, str(REPO / "src/training_curves.py"), "--models", str(model),
         "--ids", ids, "--defenses", "vanilla", "--out-stem", str(tmp_path / "curves")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1 and not marker.exists()
    error = run.stderr.strip()
    assert error.startswith(f"error: {model}: not a safe model file") and "\n" not in error


def test_an_unsafe_or_truncated_checkpoint_is_named_and_training_starts_over(
    tmp_path, tiny_spec, caplog
):
    tiny_spec["training"]["epochs"] = 1
    marker = tmp_path / "ran"
    for checkpoint, problem in ((malicious(tmp_path / "a.ckpt", marker), "safe"),
                                (truncated(tmp_path / "b.ckpt"), "readable")):  # fmt: skip
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="robdml.training"):
            history = train(tiny_spec, toy_set(), tmp_path / "model.pt", checkpoint, "cpu")
        assert [h["epoch"] for h in history] == [1] and not checkpoint.exists()
        assert f"{checkpoint}: not a {problem} checkpoint" in caplog.text
        assert "training starts over" in caplog.text and "another configuration" not in caplog.text
    assert not marker.exists()


def test_every_file_the_project_writes_reads_back_weights_only(tmp_path, tiny_spec, monkeypatch):
    """A checkpoint with its optimizer state, the model, a prepared split, an image index and
    adversarial sets, as the project writes them, pass its weights-only readers."""
    tiny_spec["training"]["epochs"] = 2
    original, calls = DEFENSES["vanilla"].loss, []

    def crash_in_epoch_two(self, *args):
        calls.append(1)
        if len(calls) == 5:  # 4 batches per epoch
            raise KeyboardInterrupt("simulated preemption")
        return original(self, *args)

    monkeypatch.setattr(DEFENSES["vanilla"], "loss", crash_in_epoch_two)
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_spec, toy_set(), tmp_path / "model.pt", checkpoint, "cpu")
    state = load_checkpoint(checkpoint, tiny_spec)
    assert state is not None and state["optimizer"]["state"]
    monkeypatch.setattr(DEFENSES["vanilla"], "loss", original)
    train(tiny_spec, toy_set(), tmp_path / "model.pt", checkpoint, "cpu")
    model, _ = load_model(tmp_path / "model.pt")

    images, labels = toy_images()
    meta = {"source": "inshop", "spec": dict(TINY_DATASET), "is_query": labels % 2 == 0}
    save_split(tmp_path / "test.pt", images, labels + 10, ["a", "b", "c", "d"] * 4, meta)
    split = load_split(tmp_path / "test.pt")
    image = tmp_path / "images" / "a.jpg"
    save_index(tmp_path / "index.pt", [image], [3], ["a", "b", "c", "d"], meta)
    assert load_index(tmp_path / "index.pt")["paths"] == [image]

    methods = read_config(REPO / "config/demo.yaml")["attack_methods"]
    for method in ("centroid", "refit"):  # a re-fitting attack's set records more
        params = {"method": method, **methods[method], "steps": 2}
        result = attack_test_set(
            model, split["images"], split["labels"], params, [8.0], 0, 64, "cpu"
        )[0]
        source = {"attack": params, "source_model_spec_hash": "0" * 16, "seconds_crafting": 1.5}
        save_adversarial_set(tmp_path / f"{method}.pt", result, split, source)
        assert torch.equal(
            load_adversarial_set(tmp_path / f"{method}.pt")["images"], result["images"]
        )


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(tmp_path):
    def full(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=f"^{tmp_path / 'out.pt'}: no space left on device"):
        atomic_write(tmp_path / "out.pt", full)
    assert list(tmp_path.iterdir()) == []


class FillingDisk(io.RawIOBase):
    """A file on a disk with `room` bytes left: a write beyond them fails with ENOSPC."""

    def __init__(self, room: int):
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)


def test_torch_running_out_of_space_is_recognised_too(tmp_path):
    """torch's zip writer reports the OSError as a RuntimeError ('unexpected pos')."""
    with pytest.raises(RuntimeError, match="unexpected pos"):
        torch.save(torch.zeros(1000), FillingDisk(1000))
    with pytest.raises(DiskFullError, match="no space left on device"):
        atomic_write(
            tmp_path / "model.pt", lambda tmp: torch.save(torch.zeros(1000), FillingDisk(1000))
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_written_file_has_the_permissions_the_umask_gives(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write(tmp_path / "table.csv", lambda tmp: tmp.write_text("a,b\n"))
    finally:
        os.umask(previous)
    assert (tmp_path / "table.csv").stat().st_mode & 0o777 == mode


def test_equal_objects_save_to_identical_bytes_whatever_the_file_name(tmp_path):
    state = nn.Linear(3, 2).state_dict()
    torch_save(tmp_path / "a.pt", state)
    torch_save(tmp_path / "b" / "other.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "other.pt").read_bytes()
