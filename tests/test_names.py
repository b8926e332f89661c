"""One source per name: the config schema's method, source, raw-file and architecture names
agree with what the library declares (registries, dataset modules, backbone builder)."""

import pytest

from robdml.attacks import ATTACKS
from robdml.config import load_schema
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


def test_dataset_sources_and_raw_files_are_the_dataset_modules():
    """Per source, the schema requires the raw files its dataset module reads and allows, besides
    them, only those of the other sources of the same data (cars196 / cars196_kaggle)."""
    assert set(DEFS["dataset"]["properties"]["source"]["enum"]) == set(PREPARERS)
    required, allowed = {}, {}
    for rule in DEFS["dataset"]["allOf"]:
        raw_files = rule["then"].get("properties", {}).get("raw_files")
        if raw_files:
            source = rule["if"]["properties"]["source"]["const"]
            required[source] = raw_files["required"]
            allowed[source] = raw_files["propertyNames"]["enum"]
    assert required == {source: list(files) for source, files in RAW_FILES.items()}
    assert allowed == {source: allowed_raw_files(source) for source in RAW_FILES}


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
