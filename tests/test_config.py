"""The config schema: shipped configs validate; a bad key or value stops with one line naming it."""

import argparse
import copy
import json
import re
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO
from robdml.config import (
    ConfigError,
    load_config,
    load_schema,
    read_config,
    read_yaml,
    validate_config,
)
from robdml.data.prepared import save_split
from robdml.fast_path import add_fast_path_options, fast_path_settings
from robdml.specs import attack_job_spec, fast_path_options, train_spec

CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / "config").glob("*.yaml"))
STUDIES = sorted(str(p.relative_to(REPO)) for p in (REPO / "config/overlays").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema():
    return load_schema()


@pytest.fixture
def demo():
    """The quick demo as Snakemake sees it: config/config.yaml with demo.yaml merged over it."""
    return read_config(REPO / "config/demo.yaml")


@pytest.mark.parametrize("path", CONFIGS + STUDIES)
def test_shipped_configs_validate(path):
    """Top-level configs are overlays on the defaults; the studies overlay demo_full.yaml."""
    base = [REPO / "config/demo_full.yaml"] if path in STUDIES else []
    config = load_config(*base, REPO / path)
    for entry in config["defenses"].values():
        assert "method" in entry
    assert list(config["defenses"]) == config["run"]["defenses"]


def test_an_overlay_merges_over_the_defaults_and_selects_what_runs():
    paper, demo = load_config(), load_config(REPO / "config/demo.yaml")
    assert list(paper["datasets"]) == ["cub200", "cars196", "inshop"]
    assert list(demo["datasets"]) == ["glyphs"] and list(demo["backbones"]) == ["cnn"]
    assert demo["defenses"]["eat"] == paper["defenses"]["eat"]  # one definition
    assert list(demo["attacks"]) == ["random_target", "cluster_mi", "mi"]  # what it reports
    assert demo["attacks"]["mi"] == paper["attacks"]["mi"]
    assert (
        demo["attacks"]["random_target"]["steps"]
        == 10
        != paper["attacks"]["random_target"]["steps"]
    )
    assert demo["report"]["paired_baselines"] == ["pgd_at"]  # ens_at is not selected
    assert demo["sanity"]["stronger"] == {} and paper["sanity"]["stronger"]


def test_the_recipe_holds_the_training_attack_and_a_defense_overrides_it(schema, demo):
    demo["defenses"]["pgd_eps4"] = {"method": "pgd_at", "attack": {"eps_255": 4}}
    demo["run"]["defenses"].append("pgd_eps4")
    resolved = validate_config(demo, schema, "demo.yaml")
    recipe_attack = demo["recipes"]["glyphs"]["attack"]
    plain = train_spec(resolved, "glyphs", "cnn", "pgd_at", 0)
    changed = train_spec(resolved, "glyphs", "cnn", "pgd_eps4", 0)["defense"]["attack"]
    assert plain["defense"]["attack"]["eps_255"] == recipe_attack["eps_255"] == 16
    assert changed == {**plain["defense"]["attack"], "eps_255": 4}
    assert "attack" not in plain["training"]  # the attack is the defense's, not the trainer's
    assert "attack" not in train_spec(resolved, "glyphs", "cnn", "vanilla", 0)["defense"]
    paper = load_config()
    assert train_spec(paper, "cub200", "resnet50", "pgd_at", 0)["defense"]["attack"]["eps_255"] == 8


@pytest.mark.parametrize(
    ("section", "name", "message"),
    [
        ("defenses", "pgd_att", r"run\.defenses: no such defense 'pgd_att' \(known: vanilla, "),
        ("datasets", "cub", r"run\.datasets: no such dataset 'cub' \(known: cub200, "),
        ("backbones", "resnet", r"run\.backbones: no such backbone 'resnet' \(known: "),
    ],
)
def test_an_unknown_selected_name_is_named(schema, demo, section, name, message):
    demo["run"][section].append(name)
    with pytest.raises(ConfigError, match=message):
        validate_config(demo, schema, "demo.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run:\n  seeds: [0]\n  seeds: [1]\n", r"bad\.yaml:3: duplicate key 'seeds'"),
        ("run:\n  seeds: [0\n", r"bad\.yaml:3: "),
        ("run: {seeds: [0]\n", r"bad\.yaml:2: "),
        ("- a list\n", r"bad\.yaml: not a YAML mapping"),
    ],
)
def test_yaml_problems_are_one_line_with_the_file_and_line(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        read_yaml(bad)
    assert "\n" not in str(error.value)


def test_normalisation_needs_one_value_per_channel(schema, demo):
    demo["datasets"]["glyphs"]["std"] = [0.35, 0.35, 0.35]
    with pytest.raises(ConfigError, match=r"datasets\.glyphs\.std: 3 values for 1 channels"):
        validate_config(demo, schema, "demo.yaml")


def test_a_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.yaml: no such config file"):
        load_config(tmp_path / "nothere.yaml")


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
    demo["defenses"]["pgd_half"] = {"method": "pgd_at", "clean_weight": 0.5}
    demo["run"]["defenses"].append("pgd_half")
    resolved = validate_config(demo, schema, "demo.yaml")
    entry = resolved["defenses"]["pgd_half"]
    defaults = demo["defense_methods"]["pgd_at"]
    assert entry == {**defaults, "method": "pgd_at", "clean_weight": 0.5}


def test_every_defense_method_takes_the_batch_sampling_and_only_names_it_if_set(schema, demo):
    """`batches` is declared once (`$defs/shared_defense_params`) and taken by every method, in
    `defense_methods` and in a named defense; a defense without it keeps its spec as it was."""
    demo["defense_methods"]["vanilla"]["batches"] = "random"
    demo["defenses"]["pgd_pairs"] = {"method": "pgd_at", "batches": "class_pairs"}
    demo["run"]["defenses"].append("pgd_pairs")
    resolved = validate_config(demo, schema, "demo.yaml")
    assert resolved["defenses"]["pgd_pairs"]["batches"] == "class_pairs"
    assert resolved["defenses"]["vanilla"]["batches"] == "random"
    assert "batches" not in resolved["defenses"]["pgd_at"]
    for method in schema["properties"]["defense_methods"]["properties"]:
        assert "batches" in schema["$defs"][f"defense_{method}"]["properties"], method
    demo["defenses"]["pgd_pairs"]["batches"] = "spc2"
    with pytest.raises(ConfigError, match=r"defenses\.pgd_pairs\.batches: 'spc2' is not one of"):
        validate_config(demo, schema, "demo.yaml")


def test_fractional_eps_is_rejected_with_the_key(schema, demo):
    """Test sets are 8-bit images: 2.5/255 cannot be delivered, so the config must not ask."""
    demo["evaluation"]["eps_255"] = [2.5, 8]
    with pytest.raises(ConfigError, match=r"evaluation\.eps_255\.0: 2\.5 is not of type 'integer'"):
        validate_config(demo, schema, "demo.yaml")


def crafted(config: dict, job: str) -> tuple[list, float | None]:
    """(attack, eps list) of a demo model's attack job, and the eps it probes for check (a)."""
    spec = attack_job_spec(config, "glyphs", "cnn", "vanilla", 0, job)
    return [(a["name"], a["eps_255"]) for a in spec["attacks"]], spec["breaking_eps_255"]


def test_a_breaking_eps_outside_the_sweep_is_probed_by_the_breaking_attacks_alone(schema, demo):
    """Check (a)'s near chance needs its eps measured. Outside the sweep only
    `sanity.breaking_attacks` run there (records of threat 'breaking'); inside it the whole
    suite does, as at every eps of the sweep; null: nothing runs there."""
    config = validate_config(copy.deepcopy(demo), schema, "demo.yaml")
    assert crafted(config, "label_free") == (
        [("random_target", [8.0, 64.0]), ("cluster_mi", [8.0])],
        64.0,
    )
    assert crafted(config, "label_aware") == ([("mi", [8.0])], None)
    demo["evaluation"]["eps_255"] = [8, 64]
    config = validate_config(copy.deepcopy(demo), schema, "demo.yaml")
    assert crafted(config, "label_free") == (
        [("random_target", [8.0, 64.0]), ("cluster_mi", [8.0, 64.0])],
        None,
    )
    demo["evaluation"]["eps_255"] = [8]
    demo["sanity"]["breaking_eps_255"] = None
    config = validate_config(demo, schema, "demo.yaml")
    assert crafted(config, "label_free") == (
        [("random_target", [8.0]), ("cluster_mi", [8.0])],
        None,
    )


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
    config = read_config()
    resolved = validate_config(copy.deepcopy(config), schema, "config.yaml")
    inshop = train_spec(resolved, "inshop", "resnet50", "vanilla", 0)["training"]
    cub = train_spec(resolved, "cub200", "resnet50", "vanilla", 0)["training"]
    assert inshop["lr"] == config["recipes"]["inshop"]["lr"] != cub["lr"]
    assert inshop["epochs"] == cub["epochs"] == config["training"]["epochs"]


def test_a_dataset_uses_the_raw_files_of_its_source(tmp_path):
    """cars196's entry lists the official files and Kaggle's zip: the resolved config (what the
    rules and the training spec see) keeps the selected source's only."""
    overlay = tmp_path / "kaggle.yaml"
    overlay.write_text("datasets: {cars196: {source: cars196_kaggle}}\n")
    official = load_config()["datasets"]["cars196"]
    kaggle = load_config(overlay)["datasets"]["cars196"]
    assert list(official["raw_files"]) == ["car_ims.tgz", "cars_annos.mat"]
    assert list(kaggle["raw_files"]) == ["stanford-car-dataset-by-classes-folder.zip"]
    assert {k: v for k, v in kaggle.items() if k not in ("source", "raw_files")} == {
        k: v for k, v in official.items() if k not in ("source", "raw_files")
    }


def test_sop_is_defined_not_selected_and_trains_with_the_inshop_recipe():
    paper, sop = load_config(), load_config(REPO / "config/sop_quick.yaml")
    assert "sop" not in paper["datasets"] and list(sop["datasets"]) == ["sop"]
    sop_training = train_spec(sop, "sop", "resnet50", "vanilla", 0)["training"]
    assert sop_training == train_spec(paper, "inshop", "resnet50", "vanilla", 0)["training"]
    assert sop_training["lr"] == 0.0006 and sop_training["batch_size"] == 180


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


def test_sanity_study_covers_every_defense_method():
    study = load_config(REPO / "config/demo_full.yaml", REPO / "config/overlays/sanity_study.yaml")
    full = load_config(REPO / "config/demo_full.yaml")
    assert {entry["method"] for entry in study["defenses"].values()} == set(full["defense_methods"])


def set_path(config: dict, dotted: str, value) -> dict:
    """`config` with the value at `dotted` (a.b.c) set; the key is created if absent."""
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


def drop_path(config: dict, dotted: str) -> dict:
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    del node[last]
    return config


# A corpus of bad configs (one change each to the quick demo as Snakemake sees it) and the
# start of the one-line message each must give, naming the key.
BAD_CONFIGS = [
    ("thread", 1, r"<top level>: unknown key 'thread'"),
    ("run.seed", [0], r"run: unknown key 'seed'"),
    ("run.seeds", [-1], r"run\.seeds\.0: -1 is less than the minimum of 0"),
    ("run.seeds", [], r"run\.seeds: \[\] should be non-empty"),
    ("run.seeds", [0, 0], r"run\.seeds: \[0, 0\] has non-unique elements"),
    ("run.backbones", "cnn", r"run\.backbones: 'cnn' is not of type 'array'"),
    ("run.datasets", ["glyph"], r"run\.datasets: no such dataset 'glyph' \(known: "),
    ("device", "gpu", r"device: 'gpu' is not one of \['cpu', 'cuda'\]"),
    ("threads", 0, r"threads: 0 is less than the minimum of 1"),
    ("gpu.autocast_bf16", "on", r"gpu\.autocast_bf16: 'on' is not of type 'boolean'"),
    ("gpu.tf32", True, r"gpu: unknown key 'tf32'"),
    ("keep_adversarial_images", "yes", r"keep_adversarial_images: 'yes' is not of type"),
    ("datasets.glyphs.image_size", "16", r"datasets\.glyphs\.image_size: '16' is not of type"),
    ("datasets.glyphs.channels", 2, r"datasets\.glyphs\.channels: 2 is not one of \[1, 3\]"),
    ("datasets.glyphs.source", "glyph", r"datasets\.glyphs\.source: 'glyph' is not one of"),
    ("datasets.glyphs.mean", [0.2, 0.2], r"datasets\.glyphs\.mean: 2 values for 1 channels"),
    ("datasets.cars196.source", "kaggle", r"datasets\.cars196\.source: 'kaggle' is not one of"),
    (
        "datasets.cars196.raw_files",
        {"car_ims.tgz": {"md5": None}, "cars_annos.mat": {"md5": None}, "archive.zip": {}},
        r"datasets\.cars196\.raw_files: 'archive\.zip' is not one of \['car_ims\.tgz'",
    ),
    (
        "datasets.sop.raw_files",
        {"Stanford_Online_Products.zip": {"md5": None, "url": "ftp://cs.stanford.edu/x.zip"}},
        r"datasets\.sop\.raw_files\.Stanford_Online_Products\.zip\.url: 'ftp://cs\.stanford",
    ),
    ("backbones.cnn.arch", "resnet", r"backbones\.cnn\.arch: 'resnet' is not one of"),
    ("backbones.cnn.embedding_dim", 1, r"backbones\.cnn\.embedding_dim: 1 is less than"),
    ("backbones.cnn.widthz", [8], r"backbones\.cnn: unknown key 'widthz'"),
    ("backbones.cnn.pretrained", False, r"backbones\.cnn: unknown key 'pretrained'"),
    ("backbones.cnn.weights", "IMAGENET1K_V1", r"backbones\.cnn\.weights: 'IMAGENET1K_V1' is not"),
    ("backbones.resnet50.weights", True, r"backbones\.resnet50\.weights: True is not one of"),
    (
        "backbones.resnet50.weights",
        "V3",
        r"backbones\.resnet50\.weights: 'V3' is not one of \[None",
    ),
    ("backbones.googlenet.weights", "DEFAULT", r"backbones\.googlenet\.weights: 'DEFAULT' is not"),
    ("weights_root", None, r"weights_root: None is not of type 'string'"),
    ("training.lr", 0, r"training\.lr: 0 is less than or equal to the minimum of 0"),
    ("training.epochs", 0, r"training\.epochs: 0 is less than the minimum of 1"),
    ("training.attack.eps_255", 300, r"training\.attack\.eps_255: 300 is greater than"),
    ("recipes.glyphs.epochs", "8", r"recipes\.glyphs\.epochs: '8' is not of type 'integer'"),
    ("recipes.glyphs.attack.stepz", 3, r"recipes\.glyphs\.attack: unknown key 'stepz'"),
    ("recipes.glyph", {"epochs": 2}, r"recipes\.glyph: no such dataset in `datasets`"),
    ("defense_methods.pgd_at.clean_weight", 2, r"defense_methods\.pgd_at\.clean_weight: 2 is"),
    ("defense_methods.trades.divergence", "js", r"defense_methods\.trades\.divergence: 'js' is"),
    ("defense_methods.pgd_att", {}, r"defense_methods: unknown key 'pgd_att'"),
    ("defenses.eat.split", "random", r"defenses\.eat\.split: 'random' is not one of"),
    ("defenses.eat.attack.eps", 4, r"defenses\.eat\.attack: unknown key 'eps'"),
    ("defenses.x", {"method": "fgsm"}, r"defenses\.x\.method: unknown method 'fgsm' \(known: "),
    ("defenses.x", {"beta": 1.0}, r"defenses\.x: 'method' is a required property"),
    ("attack_methods.mi.schedule", "adam", r"attack_methods\.mi\.schedule: 'adam' is not one of"),
    ("attacks.mi.steps", 0, r"attacks\.mi\.steps: 0 is less than the minimum of 1"),
    ("attacks.clean", {"method": "centroid"}, r"attacks: 'clean' should not be valid under"),
    ("attack_suites.label_free", [], r"attack_suites\.label_free: \[\] should be non-empty"),
    ("attack_suites.label_free", ["mi"], r"attack_suites\.label_free: 'mi' reads the true"),
    ("attack_suites.label_aware", ["orcale"], r"attack_suites\.label_aware: 'orcale' is not in"),
    ("evaluation.eps_255", [2.5], r"evaluation\.eps_255\.0: 2\.5 is not of type 'integer'"),
    ("evaluation.kmeans_seeds", [], r"evaluation\.kmeans_seeds: \[\] should be non-empty"),
    ("evaluation.kmeans_backend", "cuml", r"evaluation\.kmeans_backend: 'cuml' is not one of"),
    ("report.main_eps_255", 4, r"report\.main_eps_255: 4 is not in evaluation\.eps_255"),
    ("report.tsne.attack", "cw", r"report\.tsne\.attack: 'cw' is not in `attacks`"),
    ("resources.mem_mb", 32000, r"resources\.mem_mb: 32000 is not of type 'object'"),
    ("resources.runtime_min.train", 480, r"resources\.runtime_min: unknown key 'train'"),
    (
        "resources.throughput_img_per_s.cuda.resnet50",
        0,
        r"resources\.throughput_img_per_s\.cuda\.resnet50: 0 is less than or equal to the minimum",
    ),
    (
        "resources.throughput_img_per_s.cpu.resnet34",
        5,
        r"resources\.throughput_img_per_s\.cpu: unknown key 'resnet34'",
    ),
    ("resources.safety_factor", 0.5, r"resources\.safety_factor: 0\.5 is less than the minimum"),
    (
        "datasets.glyphs.counts.test_images",
        0,
        r"datasets\.glyphs\.counts\.test_images: 0 is less than the minimum of 1",
    ),
    ("transfer.source_defenses", ["vanila"], r"transfer\.source_defenses: 'vanila' is not in"),
    ("transfer.attacks", ["centroid"], r"transfer\.attacks: 'centroid' is in no attack suite"),
    (
        "ensemble_members.attacks",
        ["centroid"],
        r"ensemble_members\.attacks: 'centroid' is in no attack suite, so it would count in no",
    ),
    (
        "evaluation.attack_kmeans_seed",
        2,
        r"evaluation\.attack_kmeans_seed: 2 is also in evaluation\.kmeans_seeds; the attacker",
    ),
    ("sanity.stronger.steps_factor", 1, r"sanity\.stronger\.steps_factor: 1 is less than"),
    (
        "sanity.breaking_attacks",
        ["mi"],
        r"sanity\.breaking_attacks: mi not in attack_suites\.label_free \(both threat models'",
    ),
    ("sanity.breaking_eps_255", 0, r"sanity\.breaking_eps_255: 0 is less than the minimum of 1"),
]


@pytest.mark.parametrize(
    ("key", "value", "message"), BAD_CONFIGS, ids=[k for k, _, _ in BAD_CONFIGS]
)
def test_every_bad_config_in_the_corpus_is_one_line_naming_its_key(
    schema, demo, key, value, message
):
    with pytest.raises(ConfigError) as error:
        validate_config(set_path(demo, key, value), schema, "mine.yaml")
    assert re.match(r"mine\.yaml: " + message, str(error.value)), str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_required_key_is_named(schema, demo):
    with pytest.raises(ConfigError, match=r"resources\.pass_cost: 'forward' is a required"):
        validate_config(drop_path(demo, "resources.pass_cost.forward"), schema, "mine.yaml")


def test_more_tsne_classes_than_test_classes_is_one_line(tmp_path):
    """Known only once the test split exists, so the tsne step checks it before any work."""
    split = tmp_path / "test.pt"
    save_split(split, torch.zeros(6, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 0, 1, 1, 2, 2]),
               ["a", "b", "c"], {})  # fmt: skip
    spec = {"defenses": ["vanilla"], "attack": "mi", "n_classes": 12, "perplexity": 5, "seed": 0}
    run = subprocess.run(
        [sys.executable, str(REPO / "src/tsne.py"), "--spec", json.dumps(spec), "--models", "m.pt",
         "--adversarial", "a.pt", "--data", str(split), "--out-stem", str(tmp_path / "t")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0
    assert run.stderr.strip() == (
        f"error: report.tsne.n_classes: 12 is more than the 3 test classes of {split}"
    )


def test_each_device_command_carries_its_own_fast_path_section(demo):
    """The commands' fast-path options are the device's section, one option per key, and the
    scripts' parser reads back exactly that section: `cpu` on CPU, `gpu` on cuda; training
    commands leave out what only crafting reads."""
    parser = argparse.ArgumentParser()
    add_fast_path_options(parser)
    paper = read_config()
    for config, section in ((demo, demo["cpu"]), (paper, paper["gpu"])):
        options = fast_path_options(config).split()
        assert len(options) == len(section)
        assert fast_path_settings(parser.parse_args(options)) == section
    training = fast_path_settings(parser.parse_args(fast_path_options(demo, False).split()))
    assert training == {"channels_last": True}  # folding norms is crafting's: no retraining


def test_class_pairs_with_an_odd_batch_is_one_line_before_any_training(schema, demo):
    set_path(demo, "defenses.pgd_at.batches", "class_pairs")
    validate_config(demo, schema, "mine.yaml")  # the demo's batches of 64 pair up
    with pytest.raises(
        ConfigError,
        match=r"^mine\.yaml: recipes\.glyphs\.batch_size: 63 is "
        r"odd, but 'pgd_at' trains on class pairs \(batches: class_pairs\)$",
    ):
        validate_config(set_path(demo, "recipes.glyphs.batch_size", 63), schema, "mine.yaml")
