"""One source per name: the config schema's method, source, raw-file and architecture names
agree with what the library declares (registries, dataset modules, backbone builder)."""

import pytest

from robdml.attacks import ATTACKS
from robdml.config import load_schema
from robdml.data.raw_files import RAW_FILES
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
    assert set(DEFS["dataset"]["properties"]["source"]["enum"]) == set(PREPARERS)
    required = {}
    for rule in DEFS["dataset"]["allOf"]:
        raw_files = rule["then"].get("properties", {}).get("raw_files")
        if raw_files:
            source = rule["if"]["properties"]["source"]["const"]
            required[source] = raw_files["propertyNames"]["enum"]
            assert raw_files["required"] == required[source], source
    assert required == {source: list(files) for source, files in RAW_FILES.items()}


@pytest.mark.parametrize("arch", DEFS["backbone"]["properties"]["arch"]["enum"])
def test_every_schema_architecture_builds(arch):
    """The builder dispatches on the name: an enum entry it does not know would raise."""
    backbone = {"arch": arch, "widths": [8], "pretrained": False}
    trunk, feature_dim = build_trunk(backbone, 3, 32)
    assert feature_dim > 0 and sum(p.numel() for p in trunk.parameters()) > 0
