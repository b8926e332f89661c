"""One source per name: the config schema's method, source, raw-file and architecture names
agree with what the library declares (registries, dataset modules, backbone builder)."""

import re

import pytest

from robdml.attacks import ATTACKS
from robdml.config import ConfigError, check, load_schema
from robdml.data.raw_files import RAW_FILES, allowed_raw_files
from robdml.data.sources import PREPARERS
from robdml.defenses import DEFENSES
from robdml.models.backbones import build_trunk

SCHEMA = load_schema()
DEFS = SCHEMA["$defs"]


def test_defense_methods_in_the_schema_are_the_registry():
    assert list(SCHEMA["properties"]["defense_methods"]["properties"]) == list(DEFENSES)


def test_attack_methods_in_the_schema_are_the_registry():
    assert list(SCHEMA["properties"]["attack_methods"]["properties"]) == list(ATTACKS)


def test_dataset_sources_are_the_dataset_modules():
    assert set(DEFS["dataset"]["properties"]["source"]["enum"]) == set(PREPARERS)
    assert set(RAW_FILES) <= set(PREPARERS)


@pytest.mark.parametrize("source", sorted(RAW_FILES))
def test_a_dataset_entry_must_list_the_raw_files_its_module_reads_and_no_others(source):
    """The schema's raw-file rules are built from robdml.data.raw_files: each file the module
    reads is required, and only its own and its alternatives' names are allowed."""
    entry = {
        "source": source, "image_size": 32, "resize_size": 36, "channels": 3, "mean": [0.5] * 3,
        "std": [0.25] * 3, "train_transform": "none", "n_train_classes": None,
        "raw_files": {name: {"md5": None} for name in allowed_raw_files(source)},
    }  # fmt: skip
    check(entry, DEFS["dataset"], SCHEMA, "mine.yaml", "datasets.d")
    for name in RAW_FILES[source]:
        missing = {**entry, "raw_files": {n: v for n, v in entry["raw_files"].items() if n != name}}
        with pytest.raises(ConfigError, match=rf"'{re.escape(name)}' is a required property"):
            check(missing, DEFS["dataset"], SCHEMA, "mine.yaml", "datasets.d")
    unknown = {**entry, "raw_files": {**entry["raw_files"], "other.zip": {"md5": None}}}
    with pytest.raises(ConfigError, match=r"'other\.zip' is not one of"):
        check(unknown, DEFS["dataset"], SCHEMA, "mine.yaml", "datasets.d")


@pytest.mark.parametrize("arch", DEFS["backbone"]["properties"]["arch"]["enum"])
def test_every_schema_architecture_builds(arch):
    """The builder dispatches on the name: an enum entry it does not know would raise."""
    backbone = {"arch": arch, "widths": [8], "weights": None}
    trunk, feature_dim = build_trunk(backbone, 3, 32)
    assert feature_dim > 0 and sum(p.numel() for p in trunk.parameters()) > 0


def test_schema_weights_per_architecture_are_torchvisions():
    """The schema lists, per arch, the weights torchvision has (DEFAULT excluded: its meaning
    changes with torchvision's version); small_cnn and mlp have none."""
    import torchvision

    allowed = {}
    for rule in DEFS["backbone"]["allOf"]:
        archs = rule["if"]["properties"]["arch"]
        weights = rule["then"]["properties"]["weights"]
        for arch in archs.get("enum", [archs.get("const")]):
            allowed[arch] = weights.get("enum", [None] if weights.get("type") == "null" else [])
    assert set(allowed) == set(DEFS["backbone"]["properties"]["arch"]["enum"])
    for arch, names in allowed.items():
        if arch in ("small_cnn", "mlp"):
            assert names == [None], arch
            continue
        members = torchvision.models.get_model_weights(arch).__members__
        assert names == [None] + [name for name in members if name != "DEFAULT"], arch
