"""The adversarial-set file (robdml.adversarial): what an attack job writes is what transfer
and t-SNE read back, and an incomplete file is refused in one line naming what is missing."""

import pytest
import torch

from robdml.adversarial import (
    AdversarialSetError,
    attack_record,
    load_adversarial_set,
    save_adversarial_set,
    set_name,
)
from robdml.io import torch_save

SPLIT = {"labels": torch.tensor([0, 0, 1, 1]), "meta": {"source": "toy"}}
RESULT = {
    "images": torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8),
    "perturbed": torch.tensor([True, False, True, True]),
    "eps_255": 8.0,
    "objective_clean": 0.1,
    "objective_adversarial": 0.9,
}
SOURCE = {"attack": {"method": "centroid"}, "source_model_spec_hash": "abc", "seconds": 1.5}


def test_a_saved_set_reads_back_with_its_labels_meta_and_source(tmp_path):
    path = tmp_path / "job" / set_name("centroid", 8)
    save_adversarial_set(path, RESULT, SPLIT, SOURCE)
    loaded = load_adversarial_set(path)
    assert torch.equal(loaded["images"], RESULT["images"])
    assert torch.equal(loaded["labels"], SPLIT["labels"]) and loaded["meta"] == SPLIT["meta"]
    assert loaded["attack"] == SOURCE["attack"] and loaded["eps_255"] == 8.0
    assert attack_record(loaded) == {
        "attack": {"method": "centroid"}, "eps_255": 8.0, "source_model_spec_hash": "abc",
        "objective_clean": 0.1, "objective_adversarial": 0.9, "perturbed_fraction": 0.75,
    }  # fmt: skip


def test_set_names_carry_the_eps_in_255ths():
    assert set_name("mi", 8.0) == "mi/eps8.pt"
    assert set_name("mi", 0.5) == "mi/eps0.5.pt"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda payload: payload.pop("perturbed"), r"adversarial set without perturbed$"),
        (lambda payload: payload.update(labels=torch.tensor([0, 1])), r"4 images for 2 labels$"),
    ],
    ids=["missing_key", "labels_mismatch"],
)
def test_an_incomplete_set_is_refused_in_one_line(tmp_path, change, message):
    path = tmp_path / "job" / set_name("centroid", 8)
    save_adversarial_set(path, RESULT, SPLIT, SOURCE)
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch_save(path, payload)
    with pytest.raises(AdversarialSetError, match=message) as error:
        load_adversarial_set(path)
    assert "\n" not in str(error.value)
