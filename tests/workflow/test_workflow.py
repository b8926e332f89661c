"""The Snakemake workflow: the paper grid plans offline, and a reduced demo runs end to end."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO
from robdml.config import load_config, read_config
from robdml.jobs import attack_jobs, has_members_job, transfer_targets


def snakemake(*args, cwd):
    """Run Snakemake on the repository's Snakefile in `cwd`; rules find this interpreter as
    `python`, as they would in an activated virtual environment."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(cwd), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
    )


def job_counts(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


SHIPPED_CONFIGS = [[path] for path in sorted((REPO / "config").glob("*.yaml"))] + [
    [REPO / "config/demo_full.yaml", path]
    for path in sorted((REPO / "config/overlays").glob("*.yaml"))
]  # the studies (and check (b)) are overlays on demo_full.yaml


@pytest.mark.parametrize(
    "paths", SHIPPED_CONFIGS, ids=lambda paths: "+".join(p.name for p in paths)
)
def test_every_shipped_config_plans_every_training_job_offline(tmp_path, paths):
    """The paper grid, both demos, the real-data overlays and the two studies: every selected
    model and attack is planned, nothing else."""
    run = snakemake("-n", "--configfile", *map(str, paths), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    config = load_config(*paths)
    counts = job_counts(run.stdout)
    n_models = (
        len(config["datasets"])
        * len(config["backbones"])
        * len(config["defenses"])
        * len(config["run"]["seeds"])
    )
    assert counts["train"] == n_models
    weights = {(b["arch"], b["weights"]) for b in config["backbones"].values() if b["weights"]}
    assert counts.get("fetch_weights_file", 0) == len(weights)  # once, whatever uses them
    # per model one job per attack group; an ensemble's members job; a source's transfer job
    assert counts["attack"] == n_models * len(attack_jobs(config))
    members_jobs = (
        n_models
        // len(config["defenses"])
        * sum(has_members_job(config, defense) for defense in config["defenses"])
    )
    assert counts.get("attack_members", 0) == members_jobs
    n_sources = sum(
        bool(transfer_targets(config, dataset, backbone, defense, seed))
        for dataset in config["datasets"]
        for backbone in config["backbones"]
        for defense in config["defenses"]
        for seed in config["run"]["seeds"]
    )
    assert counts.get("transfer", 0) == n_sources
    if [path.name for path in paths] == ["config.yaml"]:  # the paper grid fits a cluster's queue
        assert sum(counts.values()) <= 2000
    for dataset in config["datasets"]:
        assert f"data/{dataset}/train.pt" in run.stdout
    unselected = {"cub200", "cars196", "inshop", "sop", "glyphs"} - set(config["datasets"])
    assert not [name for name in unselected if f"data/{name}/" in run.stdout]


def dag_fingerprint(paths, cwd) -> dict:
    """Number and sha256 of the shell commands of every job of a forced dry run, sorted, with
    the repository and work paths replaced: equal fingerprints, equal jobs with equal specs."""
    run = snakemake(
        "-n", "-p", "--forceall", "--cores", "2", "--configfile", *map(str, paths), cwd=cwd
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    commands = sorted(
        line.split("Shell command: ", 1)[1].replace(str(REPO), "<repo>").replace(str(cwd), "<work>")
        for line in run.stdout.splitlines()
        if "Shell command: " in line
    )
    return {
        "jobs": len(commands),
        "sha256": hashlib.sha256("\n".join(commands).encode()).hexdigest(),
    }


DAG_FINGERPRINTS = json.loads((REPO / "tests/fixtures/dag_fingerprints.json").read_text())


@pytest.mark.parametrize("name", sorted(DAG_FINGERPRINTS))
def test_shipped_configs_plan_the_recorded_dag(tmp_path, name):
    """Every job and its spec, as recorded in tests/fixtures/dag_fingerprints.json: a change to
    configs or rules that should not change what runs (e.g. turning full configs into
    overlays) must leave these unchanged. When a change is meant to alter a DAG, record the
    new fingerprint (tests/fixtures/README.md) and say why in the commit."""
    recorded = DAG_FINGERPRINTS[name]
    paths = [REPO / "config" / path for path in recorded["configfiles"]]
    assert dag_fingerprint(paths, tmp_path) == {
        "jobs": recorded["jobs"], "sha256": recorded["sha256"]
    }  # fmt: skip


def test_the_workflow_fetches_weights_locally_before_training(tmp_path):
    """`snakemake fetch_weights` plans one job per weights file of the selected backbones,
    local rules (Snakemake says `localrule` only when it runs them); a training job takes its
    file as input and reads it with --weights."""
    fetch = snakemake("-n", "-p", "--cores", "1", "fetch_weights", cwd=tmp_path)
    assert fetch.returncode == 0, fetch.stderr
    for arch in ("resnet50", "googlenet"):
        out = f"results/weights/{arch}/IMAGENET1K_V1.pth"
        assert f"src/fetch_weights.py --arch {arch} --weights IMAGENET1K_V1 --out {out}" in (
            fetch.stdout
        )
    assert fetch.stdout.count("rule fetch_weights_file:") == 2
    local = re.search(
        r"^localrules:\n((?:    \w+,\n)+)", (REPO / "workflow/rules/weights.smk").read_text(), re.M
    )
    assert set(re.findall(r"\w+", local[1])) == {"fetch_weights", "fetch_weights_file"}
    model = "results/models/cub200/resnet50/vanilla/seed0/model.pt"
    train = snakemake("-n", "-p", "--cores", "1", model, cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert " --weights results/weights/resnet50/IMAGENET1K_V1.pth > " in train.stdout
    assert "rule fetch_weights_file:" in train.stdout


def test_fetch_is_all_a_login_node_runs(tmp_path):
    """`snakemake fetch` plans every raw file of the selected datasets and every weights file
    of the selected backbones, and nothing else; only those rules are local: extraction and
    preparation are cluster jobs with their own resources."""
    config = load_config()
    fetch = snakemake("fetch", "-n", "--cores", "1", cwd=tmp_path)
    assert fetch.returncode == 0, fetch.stderr[-2000:]
    raw_files = sum(len(entry.get("raw_files", {})) for entry in config["datasets"].values())
    assert job_counts(fetch.stdout) == {"download": raw_files, "fetch_weights_file": 2, "fetch": 1}
    local = set()
    for rules in (REPO / "workflow/rules").glob("*.smk"):
        block = re.search(r"^localrules:\n((?:    \w+,\n)+)", rules.read_text(), re.M)
        local |= set(re.findall(r"\w+", block[1])) if block else set()
    assert local == {"fetch", "download", "fetch_weights", "fetch_weights_file"}


def test_convergence_overlay_adds_every_stronger_variant_to_the_quick_demo(tmp_path):
    demo, overlay = REPO / "config/demo.yaml", REPO / "config/overlays/convergence.yaml"
    run = snakemake("-n", "-p", "--configfile", str(demo), str(overlay), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    config = load_config(demo, overlay)
    n_models = len(config["defenses"])
    assert job_counts(run.stdout)["attack"] == n_models * 3  # label-free, label-aware, stronger
    for attack in ["random_target", "cluster_mi", "mi"]:
        for variant in ["steps2x", "restarts5"]:
            assert f'"name": "{attack}_{variant}"' in run.stdout


def test_default_config_is_the_paper_and_a_configfile_merges_over_it(tmp_path):
    paper = snakemake("-n", cwd=tmp_path)
    demo = snakemake("-n", "--configfile", str(REPO / "config/demo.yaml"), cwd=tmp_path)
    assert "cub200" in paper.stdout
    assert "cub200" not in demo.stdout and "glyphs" in demo.stdout
    one_value = snakemake(
        "-n", "-p", "--cores", "4", "--configfile", str(REPO / "config/demo.yaml"),
        "--config", "threads=2", cwd=tmp_path,
    )  # fmt: skip
    assert one_value.returncode == 0 and "--threads 2 " in one_value.stdout


def test_the_workflow_plans_in_a_snakemake_environment_without_torch(tmp_path):
    """`--sdm conda` from a stock Snakemake install: the Snakefile and config validation must
    not import the scientific stack (only the rules' conda envs have it)."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'torchvision', 'sklearn', 'seaborn',\n"
        "                                  'pytorch_metric_learning'}:\n"
        "            raise ImportError(f'{name} is not in a stock Snakemake environment')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d",
         str(tmp_path / "work"), "--configfile", str(REPO / "config/demo.yaml")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(blocked)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert job_counts(run.stdout)["train"] == 5


def test_a_typo_in_a_target_path_names_the_unknown_part(tmp_path):
    demo = str(REPO / "config/demo.yaml")
    typo = "results/models/glyphs/cnn/pgd_att/seed0/model.pt"
    run = snakemake("-n", typo, "--configfile", demo, cwd=tmp_path)
    assert run.returncode != 0
    assert (
        f"{typo}: no such defense 'pgd_att' in run.defenses (selected: vanilla, pgd_at,"
        in run.stdout + run.stderr
    )
    good = snakemake("-n", typo.replace("pgd_att", "pgd_at"), "--configfile", demo, cwd=tmp_path)
    assert good.returncode == 0 and job_counts(good.stdout)["train"] == 1


def test_a_duplicate_key_in_a_configfile_stops_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("threads: 1\nrun: {seeds: [0]}\nthreads: 2\n")
    run = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert run.returncode != 0
    assert f"{bad}:3: duplicate key 'threads'" in run.stdout + run.stderr


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """The demo config cut down to seconds of compute: 1 epoch, 2 attack steps, 2 eps, one
    attack per threat model, with a transfer row (pgd_at attacked with vanilla's examples) and
    the stronger-attack sanity check from the convergence overlay."""
    workdir = tmp_path_factory.mktemp("demo")
    config = read_config(REPO / "config/demo.yaml")
    config["recipes"]["glyphs"] |= {"epochs": 1, "attack": {"eps_255": 16, "steps": 1}}
    config["defenses"]["eat2"] = {"method": "eat", "members": 2, "attack": {"step_fraction": 1}}
    config["run"]["defenses"] = ["vanilla", "pgd_at", "eat2"]
    for method in config["attack_methods"].values():
        method["steps"] = 2
    config["evaluation"]["eps_255"] = [4, 8]
    config["sanity"]["breaking_eps_255"] = None  # no 64/255: check (a)'s near chance not run
    config["report"]["main_eps_255"] = 8
    config["report"]["tsne"]["defenses"] = ["vanilla", "pgd_at"]
    config["attacks"] = {"centroid": {"method": "centroid"}, "mi": {"method": "mi"}}
    config["attack_suites"] = {"label_free": ["centroid"], "label_aware": ["mi"]}
    config["ensemble_members"] = {"evaluate": True, "attacks": ["centroid"]}
    config["report"]["tsne"]["attack"] = "centroid"
    config["sanity"]["stronger"] = {"steps_factor": 2, "restarts": None}  # no restarts variant
    config["transfer"] = {"attacks": ["centroid"], "source_defenses": ["vanilla"],
                          "source_seed_offset": 1}  # fmt: skip
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake("--cores", "2", "--configfile", str(path), cwd=workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir, config


def test_demo_writes_tables_figures_and_metrics_with_provenance(tiny_demo):
    workdir, config = tiny_demo
    for name in ("main.csv", "main.md", "main.tex", "long.csv", "attacks.md"):
        assert (workdir / "results/tables" / name).stat().st_size > 0
    for name in ("nmi_by_defense", "nmi_vs_eps", "recall1_vs_eps"):
        for suffix in (".png", ".pdf"):
            assert (workdir / "results/figures" / (name + suffix)).stat().st_size > 1000
    for suffix in (".png", ".pdf"):
        assert (workdir / f"results/figures/tsne_glyphs_cnn{suffix}").stat().st_size > 1000
        assert (workdir / f"results/figures/training_curves{suffix}").stat().st_size > 1000
    provenance = json.loads((workdir / "results/provenance.json").read_text())
    assert len(provenance["commit"]) == 40 and len(provenance["config_hash"]) == 16
    summary = (workdir / "results/summary.md").read_text()
    assert "## Main table" in summary and "Produced by commit" in summary
    assert re.search(r"\d+ checks, \d+ failed", summary)
    main = pd.read_csv(workdir / "results/tables/main.csv")
    card = json.loads((workdir / "results/cards/glyphs/cnn_vanilla_seed0.json").read_text())
    worst = {(row["threat_model"], row["eps_255"]): row["nmi"] for row in card["results"]}
    table_cell = main.loc[main["defense"] == "vanilla", "label-free NMI"].iloc[0]
    assert table_cell.startswith(f"{worst[('label-free', 8.0)]['value']:.3f}")  # like with like
    assert worst[("label-free", 8.0)]["attack"] == "centroid"
    assert (workdir / "results/cards/glyphs/cnn_eat2_seed0.md").read_text().startswith("# eat2")
    assert sorted(main["defense"]) == ["eat2", "pgd_at", "vanilla"]
    long = pd.read_csv(workdir / "results/tables/long.csv")
    transfer = long[long["threat"] == "transfer"]
    assert set(transfer["defense"]) == {"eat2", "pgd_at"}
    assert set(transfer["source"]) == {"vanilla/seed0"}
    members = pd.read_csv(workdir / "results/tables/members.csv")
    assert list(members["defense"]) == ["eat2"]
    assert {"members clean NMI", "label-free member attack NMI", "label-aware worst NMI"} <= set(
        members.columns
    )
    member_rows = long[long["threat"] == "member"]
    assert set(member_rows["source"]) == {"member0", "member1"}
    assert set(long.loc[long["attack"] == "centroid_steps2x", "eps_255"]) == {8}
    sanity = pd.read_csv(workdir / "results/sanity/sanity.csv")
    checks = " ".join(sanity["check"])
    assert "a: non-increasing" in checks and "b: steps_factor 2 at eps 8" in checks
    assert "c: white-box" in checks
    chance = sanity[sanity["check"].str.startswith("a: near chance")]
    assert len(chance) == 6 and chance["value"].str.startswith("not run").all()  # 3 models x 2
    assert set(sanity["threat_model"]) == {"label-free", "label-aware"}
    assert {"label-free NMI", "label-aware NMI"} <= set(main.columns)
    assert sanity["passed"].dtype == bool
    metrics = workdir / "results/metrics/glyphs/cnn/vanilla/seed0"
    job = json.loads((metrics / "label_free.json").read_text())
    assert [(r["ids"]["attack"], r["ids"]["eps_255"]) for r in job["records"]] == [
        ("clean", 0), ("centroid", 4), ("centroid", 8)
    ]  # fmt: skip
    assert job["seconds"]["work"] > 0
    record = job["records"][2]
    assert record["ids"]["threat"] == "whitebox"
    assert record["versions"]["torch"].startswith("2.14.1")
    assert record["config"]["model"]["defense"] == {"method": "vanilla"}
    assert len(record["config_hash"]) == 16
    for metric in ("nmi", "ami", "ari", "f1", "recall@1", "map_at_r", "nmi_chance", "nmi_std"):
        assert 0 <= record["metrics"][metric] <= 1
    assert record["config"]["evaluation"]["kmeans_seeds"] == [0, 1, 2]
    assert record["config"]["attack"]["attack"]["attacker_seed"] == 1000
    assert record["n_test_classes"] == 277


def test_the_report_holds_every_table_and_figure_with_its_caption(tiny_demo):
    workdir, _ = tiny_demo
    run = snakemake("--report", "results/report.html", "--configfile",
                    str(workdir / "tiny.yaml"), cwd=workdir)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    html = (workdir / "results/report.html").read_text()
    for caption in sorted((REPO / "workflow/report").glob("*.rst")):
        # four plain words in a row: markup and escaping in the HTML leave them as they are
        words = re.search(r"[A-Za-z]+(?: [A-Za-z]+){3}", caption.read_text())[0]
        assert words in html, caption.name


def test_demo_rerun_is_a_no_op_and_an_attack_change_reruns_only_downstream(tiny_demo, tmp_path):
    workdir, config = tiny_demo
    assert "Nothing to be done" in snakemake("-n", "--configfile", str(workdir / "tiny.yaml"),
                                             cwd=workdir).stdout  # fmt: skip
    config["attack_methods"]["centroid"]["steps"] = 3
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    counts = job_counts(snakemake("-n", "--configfile", str(changed), cwd=workdir).stdout)
    assert "train" not in counts and "prepare_data" not in counts
    # centroid's job and its stronger variant's (check b), for every defense; not mi's
    assert counts["attack"] == 6
    assert counts["attack_members"] == 1  # eat2's members attacked with centroid
    assert counts["transfer"] == 1  # pgd_at and eat2 attacked with vanilla's new examples


def test_a_plain_rerun_rebuilds_what_a_killed_job_deleted(tiny_demo, tmp_path):
    """Snakemake deletes a job's outputs before running it; killed then, the job leaves them
    missing while the tables are up to date. A plain rerun must plan it again (rule all names
    every model and metrics file), and only it and what reads it."""
    workdir, _ = tiny_demo
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    models = copy / "results/models/glyphs/cnn"
    metrics = copy / "results/metrics/glyphs/cnn"
    (metrics / "pgd_at/seed0/label_free.json").unlink()
    shutil.rmtree(copy / "results/adversarial/glyphs/cnn/pgd_at/seed0/label_free")
    (models / "vanilla/seed0/model.pt").unlink()
    run = snakemake("-n", "--configfile", str(copy / "tiny.yaml"), cwd=copy)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = job_counts(run.stdout)
    assert counts["train"] == 1 and "prepare_data" not in counts, counts
    # pgd_at's label_free job; vanilla's three (label_free, label_aware, stronger)
    assert counts["attack"] == 4, counts


EXAMPLE = REPO / "examples/external_model"


def external_overlay(path, weights):
    """The worked example's overlay with the factory's absolute path (the run is elsewhere)."""
    overlay = yaml.safe_load((EXAMPLE / "overlay.yaml").read_text())
    entry = overlay["external_models"]["glyph_cnn"]
    entry["factory"] = f"{EXAMPLE}/factory.py:build"
    entry["weights"] = weights
    path.write_text(yaml.safe_dump(overlay))
    return path


def test_an_external_model_is_imported_attacked_and_reported_never_trained(tmp_path):
    overlay = external_overlay(tmp_path / "external.yaml", None)
    run = snakemake("-n", "--configfile", str(REPO / "config/demo.yaml"), str(overlay),
                    cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    counts = job_counts(run.stdout)
    defenses = len(read_config(REPO / "config/demo.yaml")["run"]["defenses"])
    assert counts["train"] == defenses and counts["import_external"] == 1
    assert counts["attack"] == 2 * (defenses + 1)  # label_free, label_aware
    assert "results/models/glyphs/cnn/glyph_cnn/seed0/model.pt" in run.stdout
    assert "results/cards/glyphs/glyph_cnn.md" in run.stdout
    missing = external_overlay(tmp_path / "missing.yaml", "results/external/absent.pt")
    run = snakemake("-n", "--configfile", str(REPO / "config/demo.yaml"), str(missing),
                    cwd=tmp_path)  # fmt: skip
    assert run.returncode != 0
    assert "glyph_cnn.weights: no file results/external/absent.pt" in run.stdout + run.stderr


def test_the_worked_example_external_model_gets_the_card_of_the_model_it_was_exported_from(
    tiny_demo, tmp_path
):
    """README "Bring your own model": a demo model exported as a plain state dict + factory,
    evaluated through the external path, scores exactly what it scored as a trained defense
    (white-box, every eps, both threat models); examples crafted on the trained model transfer
    to it as white-box examples do."""
    source, _ = tiny_demo
    workdir = tmp_path / "demo"
    shutil.copytree(source, workdir, symlinks=True)
    export = subprocess.run(
        [sys.executable, str(EXAMPLE / "export.py"),
         "results/models/glyphs/cnn/vanilla/seed0/model.pt", "results/external/glyph_cnn.pt"],
        cwd=workdir, capture_output=True, text=True,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    overlay = external_overlay(workdir / "external.yaml", "results/external/glyph_cnn.pt")
    configs = ["--configfile", str(workdir / "tiny.yaml"), str(overlay)]
    counts = job_counts(snakemake("-n", *configs, cwd=workdir).stdout)
    assert "train" not in counts and counts["import_external"] == 1
    run = snakemake("--cores", "2", *configs, cwd=workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    cards = workdir / "results/cards/glyphs"
    external = json.loads((cards / "glyph_cnn.json").read_text())
    trained = json.loads((cards / "cnn_vanilla_seed0.json").read_text())
    assert external["results"] == trained["results"]
    assert external["model"] == {"dataset": "glyphs", "backbone": "cnn",
                                 "defense": "glyph_cnn", "seed": 0}  # fmt: skip
    assert external["external"]["weights"] == "results/external/glyph_cnn.pt"
    assert trained["external"] is None
    main = pd.read_csv(workdir / "results/tables/main.csv")
    assert list(main["defense"]) == ["vanilla", "pgd_at", "eat2", "glyph_cnn"]
    long = pd.read_csv(workdir / "results/tables/long.csv")
    mine = long[long["defense"] == "glyph_cnn"]
    transferred = mine[mine["threat"] == "transfer"].set_index("eps_255")["nmi"]
    whitebox = long[(long["defense"] == "vanilla") & (long["attack"] == "centroid")]
    assert transferred.to_dict() == whitebox.set_index("eps_255")["nmi"].to_dict()
    record = json.loads((workdir / "results/metrics/glyphs/cnn/glyph_cnn/seed0/label_free.json"
                         ).read_text())["records"][0]  # fmt: skip
    assert record["config"]["model"]["external"] == "glyph_cnn"
    assert len(record["config"]["model"]["weights_sha256"]) == 64
