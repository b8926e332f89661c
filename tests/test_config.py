"""The config schema: shipped configs validate; a bad key or value stops with one line naming it."""

import copy
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from robdml.config import ConfigError, load_config, load_schema, train_spec, validate_config

CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / "config").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema():
    return load_schema()


@pytest.fixture
def demo():
    return yaml.safe_load((REPO / "config/demo.yaml").read_text())


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_configs_validate(path):
    config = load_config(REPO / path)
    for entry in config["defenses"].values():
        assert "method" in entry


def test_misspelt_key_is_named(schema, demo):
    demo["datasets"]["glyphs"]["imagesize"] = demo["datasets"]["glyphs"].pop("image_size")
    with pytest.raises(ConfigError) as error:
        validate_config(demo, schema, "demo.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert "datasets.glyphs" in message and "'imagesize'" in message


def test_out_of_range_value_is_named(schema, demo):
    demo["training"]["lr_decay_gamma"] = 1.5
    with pytest.raises(ConfigError, match=r"training\.lr_decay_gamma: 1\.5 is greater"):
        validate_config(demo, schema, "demo.yaml")


def test_misspelt_defense_override_is_named(schema, demo):
    demo["defenses"]["pgd_strong"] = {"method": "pgd_at", "clean_wieght": 0.5}
    with pytest.raises(ConfigError, match=r"defenses\.pgd_strong: unknown key 'clean_wieght'"):
        validate_config(demo, schema, "demo.yaml")


def test_unknown_method_is_named(schema, demo):
    demo["attacks"]["fgsm"] = {"method": "fgsm"}
    with pytest.raises(ConfigError, match=r"attacks\.fgsm\.method: unknown method 'fgsm'"):
        validate_config(demo, schema, "demo.yaml")


def test_overrides_merge_over_method_defaults(schema, demo):
    demo["defenses"]["pgd_eps4"] = {"method": "pgd_at", "attack": {"eps_255": 4}}
    resolved = validate_config(demo, schema, "demo.yaml")
    entry = resolved["defenses"]["pgd_eps4"]
    defaults = demo["defense_methods"]["pgd_at"]
    assert entry["attack"]["eps_255"] == 4
    assert entry["attack"]["steps"] == defaults["attack"]["steps"]
    assert entry["clean_weight"] == defaults["clean_weight"]


def test_fractional_eps_is_rejected_with_the_key(schema, demo):
    """Test sets are 8-bit images: 2.5/255 cannot be delivered, so the config must not ask."""
    demo["evaluation"]["eps_255"] = [2.5, 8]
    with pytest.raises(ConfigError, match=r"evaluation\.eps_255\.0: 2\.5 is not of type 'integer'"):
        validate_config(demo, schema, "demo.yaml")


def test_label_aware_attack_in_the_label_free_suite_is_named(schema, demo):
    demo["attack_suites"]["label_free"].append("mi")
    with pytest.raises(ConfigError, match=r"attack_suites\.label_free: 'mi' reads the true"):
        validate_config(demo, schema, "demo.yaml")


def test_unknown_suite_attack_is_named(schema, demo):
    demo["attack_suites"]["label_aware"] = ["orcale"]
    with pytest.raises(ConfigError, match=r"attack_suites\.label_aware: 'orcale' is not in"):
        validate_config(demo, schema, "demo.yaml")


def test_stronger_variants_are_derived_from_every_suite_attack(schema, demo):
    demo["sanity"]["stronger"] = {"steps_factor": 2, "restarts": 5}
    resolved = validate_config(demo, schema, "demo.yaml")
    suites = demo["attack_suites"]
    for name in suites["label_free"] + suites["label_aware"]:
        base = resolved["attacks"][name]
        longer = {key: 2 * base[key] for key in ("steps", "refit_every") if key in base}
        assert resolved["attacks"][f"{name}_steps2x"] == {**base, **longer}
        assert resolved["attacks"][f"{name}_restarts5"] == {**base, "restarts": 5}


def test_recipes_override_training_per_dataset(schema):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    resolved = validate_config(copy.deepcopy(config), schema, "config.yaml")
    inshop = train_spec(resolved, "inshop", "resnet50", "vanilla", 0)["training"]
    cub = train_spec(resolved, "cub200", "resnet50", "vanilla", 0)["training"]
    assert inshop["lr"] == config["recipes"]["inshop"]["lr"] != cub["lr"]
    assert inshop["epochs"] == cub["epochs"] == config["training"]["epochs"]


def test_snakemake_stops_with_the_message(tmp_path, demo):
    demo["evaluation"]["kmeans_sed"] = demo["evaluation"].pop("kmeans_seeds")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(demo))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"),
         "-d", str(tmp_path), "--configfile", str(bad)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0
    assert "evaluation: unknown key 'kmeans_sed'" in run.stdout + run.stderr


@pytest.mark.parametrize("study", ["eat_ablation.yaml", "sanity_study.yaml"])
def test_study_configs_are_the_demo_full_recipe_on_a_subset(study):
    """The two studies run on 2 cores must measure demo_full.yaml's models, not look-alikes."""
    subset = load_config(REPO / "config" / study)
    full = load_config(REPO / "config/demo_full.yaml")
    same_sections = ["training", "datasets", "recipes"]
    if study == "sanity_study.yaml":  # the ablation runs the main eps only, without sanity
        same_sections += ["evaluation", "sanity", "transfer", "report"]
    for section in same_sections:
        if section == "evaluation":  # a subset of the eps sweep measures the same models
            sweep = subset[section]["eps_255"]
            assert set(sweep) <= set(full[section]["eps_255"]) and len(sweep) >= 2
            assert {**subset[section], "eps_255": None} == {**full[section], "eps_255": None}
            continue
        assert subset[section] == full[section], section
    assert set(subset["seeds"]) <= set(full["seeds"])
    for section in ("backbones", "defenses", "attacks"):
        for name, entry in subset[section].items():
            assert entry == full[section][name], f"{section}.{name}"
    assert {"vanilla", "pgd_at", "ens_at", "eat"} <= set(subset["defenses"])


def test_sanity_study_covers_every_defense_method():
    study = load_config(REPO / "config/sanity_study.yaml")
    full = load_config(REPO / "config/demo_full.yaml")
    assert {entry["method"] for entry in study["defenses"].values()} == set(full["defense_methods"])
