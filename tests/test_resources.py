"""Requested resources: the cost model of robdml.resources, and what the rules request (a dry
run's `resources:` lines) against it and against benchmarks/gpu_hours.py."""

import copy
import math
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO
from robdml import jobs, resources
from robdml.config import ConfigError, load_config, load_schema
from robdml.flops import forward_flops

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_hours  # noqa: E402


@pytest.fixture(scope="module")
def paper():
    return load_config()


@pytest.fixture(scope="module")
def demo():
    return load_config(REPO / "config/demo.yaml")


def with_changes(config: dict, changes: dict) -> dict:
    """A deep copy of `config` with `changes` ({'a.b.c': value}) set."""
    changed = copy.deepcopy(config)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = changed
        for key in parents:
            node = node[key]
        node[last] = value
    return changed


# ------------------------------------------------------------------ the cost model


def test_training_time_is_linear_in_epochs_images_and_attack_steps(paper):
    def seconds(**changes):
        config = with_changes(paper, changes)
        return resources.train_seconds(config, "cub200", "resnet50", "pgd_at")

    base = seconds()
    assert seconds(**{"training.epochs": 120}) == pytest.approx(2 * base)
    assert seconds(**{"datasets.cub200.counts.train_images": 3 * 5864}) == pytest.approx(3 * base)
    steps = [seconds(**{"defenses.pgd_at.attack": {**paper["defenses"]["pgd_at"]["attack"],
                                                  "steps": n}}) for n in (0, 10, 20)]  # fmt: skip
    assert steps[2] - steps[1] == pytest.approx(steps[1] - steps[0]) and steps[1] > steps[0]
    # PGD-AT = 1 + steps x an input-gradient pass, in forward+backward passes per image
    g = paper["resources"]["pass_cost"]["input_gradient"]
    assert steps[1] / steps[0] == pytest.approx(1 + 10 * g)


def test_ensemble_training_time_grows_with_members(paper):
    """Without a split every member trains on the whole batch (linear in members); with EAT's
    split each trains on (M - 1) / M of it."""

    def seconds(defense, members):
        config = with_changes(paper, {f"defenses.{defense}.members": members})
        return resources.train_seconds(config, "cub200", "resnet50", defense)

    assert seconds("ens_at", 6) == pytest.approx(2 * seconds("ens_at", 3))
    assert seconds("eat", 5) == pytest.approx(2 * seconds("eat", 3))  # (5 - 1) / (3 - 1)
    single = resources.train_seconds(paper, "cub200", "resnet50", "pgd_at")
    assert seconds("ens_at", 3) == pytest.approx(3 * single)
    # eat_m1 (one member, no split) is PGD-AT
    assert resources.train_seconds(paper, "cub200", "resnet50", "eat_m1") == pytest.approx(single)


def test_attack_time_is_linear_in_steps_restarts_eps_and_members(paper):
    def seconds(n_eps=5, member=False, defense="vanilla", **changes):
        config = with_changes(paper, changes)
        work = resources.crafting_work(config, "cub200", defense, "es", n_eps, member)
        return resources.work_seconds(config, "cub200", "resnet50", work)  # `es`: no k-means

    es = paper["attacks"]["es"]
    by_steps = [seconds(**{"attacks.es": {**es, "steps": n}}) for n in (10, 20, 30)]
    assert by_steps[2] - by_steps[1] == pytest.approx(by_steps[1] - by_steps[0])
    assert by_steps[1] > by_steps[0]
    by_restarts = [seconds(**{"attacks.es": {**es, "restarts": n}}) for n in (1, 2, 3)]
    assert by_restarts[2] - by_restarts[1] == pytest.approx(by_restarts[1] - by_restarts[0])
    assert by_restarts[1] > by_restarts[0]
    by_eps = [seconds(n) for n in (1, 2, 3)]
    assert by_eps[2] - by_eps[1] == pytest.approx(by_eps[1] - by_eps[0])
    assert by_eps[1] > by_eps[0]
    assert seconds(defense="eat") == pytest.approx(3 * seconds())
    assert seconds(defense="eat", member=True) == pytest.approx(seconds())


def test_refitting_attacks_pay_a_kmeans_per_round(paper):
    refit = paper["attacks"]["refit"]  # 40 steps in rounds of 5: 8 k-means per eps
    passes, kmeans = resources.attack_work(refit, 5, paper["resources"]["pass_cost"])
    assert kmeans == refit["kmeans_n_init"] * (1 + 5 * 8)
    _, one_round = resources.attack_work({**refit, "refit_every": 40}, 5, {
        "forward": 0.33, "input_gradient": 0.66})  # fmt: skip
    assert one_round == refit["kmeans_n_init"]  # one round of one restart: nothing to choose
    assert resources.attack_work(paper["attacks"]["es"], 5, paper["resources"]["pass_cost"])[1] == 0


def test_apgd_under_bf16_pays_an_fp32_forward_per_step_for_its_decisions(paper):
    """robdml.attacks.pgd decides on fp32 values when the gradient pass runs under bf16."""
    cost = paper["resources"]["pass_cost"]
    mi, random_target = paper["attacks"]["mi"], paper["attacks"]["random_target"]
    extra = resources.attack_work(mi, 5, cost, True)[0] - resources.attack_work(mi, 5, cost)[0]
    assert extra == pytest.approx(5 * mi["restarts"] * mi["steps"] * cost["forward"])
    sign = [resources.attack_work(random_target, 5, cost, bf16)[0] for bf16 in (True, False)]
    assert sign[0] == sign[1]  # sign steps decide nothing
    cuda, cpu = (
        resources.crafting_work(with_changes(paper, {"device": device}), "cub200", "eat", "mi", 5)
        for device in ("cuda", "cpu")
    )
    assert cuda.passes > cpu.passes


def test_throughput_scales_with_the_pixel_count(paper):
    config = with_changes(paper, {"datasets.cub200.image_size": 112})
    assert resources.throughput(config, "cub200", "resnet50") == pytest.approx(
        4 * resources.throughput(paper, "cub200", "resnet50")
    )
    assert resources.throughput(paper, "cub200", "resnet50") == 1000  # the stated figure


def test_the_attempt_scales_every_request(paper):
    minutes = [resources.train_runtime(paper, "cub200", "resnet50", "eat", a) for a in (1, 2, 3)]
    seconds = resources.train_seconds(paper, "cub200", "resnet50", "eat")
    startup, safety = paper["resources"]["startup_min"], paper["resources"]["safety_factor"]
    assert minutes == [math.ceil(a * (startup + safety * seconds / 60)) for a in (1, 2, 3)]
    assert minutes[1] >= 2 * minutes[0] - 1 and minutes[2] >= 3 * minutes[0] - 2
    for kind in ("small", "prepare", "train", "evaluate", "tsne"):
        one, two = (resources.mem_mb(paper, kind, "cub200", attempt=a) for a in (1, 2))
        assert two in (2 * one, 2 * one - 1), kind
    assert (
        resources.fixed_runtime(paper, "report", 2)
        == 2 * paper["resources"]["runtime_min"]["report"]
    )


def test_no_request_exceeds_the_time_limit_and_long_work_gets_the_attempts_it_needs(paper):
    """In-Shop `eat_m5` training asks for more than 24 h unclamped: every attempt asks for the
    limit, and `attempts` covers its work at (limit - start-up) minutes per attempt."""
    limit = paper["resources"]["time_limit_min"]
    seconds = resources.train_seconds(paper, "inshop", "resnet50", "eat_m5")
    assert resources.unlimited_minutes(paper, seconds) > limit
    assert [resources.train_runtime(paper, "inshop", "resnet50", "eat_m5", a) for a in (1, 2)] == [
        limit, limit
    ]  # fmt: skip
    needed = resources.attempts(paper, seconds)
    work_minutes = paper["resources"]["safety_factor"] * seconds / 60
    per_attempt = limit - paper["resources"]["startup_min"]
    assert (needed - 1) * per_attempt < work_minutes <= needed * per_attempt
    assert resources.fixed_runtime({"resources": {**paper["resources"], "time_limit_min": 5}},
                                   "prepare") == 5  # fmt: skip
    short = {**paper, "resources": {**paper["resources"], "time_limit_min": 10**6}}
    assert resources.attempts(short, seconds) == 1
    memory = [resources.mem_mb(paper, "attack", "inshop", 5, attempt=a) for a in (1, 2, 4)]
    assert memory[1] in (2 * memory[0], 2 * memory[0] - 1) and memory[2] == memory[1]


def test_small_rules_ask_for_little(paper, demo):
    for config in (paper, demo):
        small = resources.mem_mb(config, "small")
        torch_job = resources.mem_mb(config, "evaluate", config["run"]["datasets"][0])
        assert small <= 2000 and small < torch_job
        assert resources.fixed_runtime(config, "report") <= 10
    assert resources.mem_mb(demo, "tsne", "glyphs") <= 1100  # glyphs are kilobytes
    # memory follows the image sets: In-Shop's attack holds more than CUB's
    assert resources.mem_mb(paper, "attack", "inshop", 5) > resources.mem_mb(
        paper, "attack", "cub200", 5
    )


def test_every_defense_method_has_a_training_cost(paper):
    methods = load_schema()["properties"]["defense_methods"]["properties"]
    assert set(methods) == set(resources.TRAIN_PASSES)
    for defense in paper["defenses"]:
        for dataset in paper["datasets"]:
            minutes = resources.train_runtime(paper, dataset, "resnet50", defense)
            assert 0 < minutes < 7 * 24 * 60, (dataset, defense, minutes)


def test_hm_costs_what_its_anchors_per_batch_make(paper):
    """f + T/N (3 (S g + 1) + 2): PGD and the update on 3 images per anchor, ICS on 2; the
    paper's HM samples class pairs (T = N/2), random batches have at most T = N."""
    from robdml.specs import defense_spec

    params, cost = defense_spec(paper, "cub200", "hm"), paper["resources"]["pass_cost"]
    assert params["batches"] == "class_pairs"
    per_anchor = 3 * (params["attack"]["steps"] * cost["input_gradient"] + 1) + 2
    assert resources.train_passes(params, cost) == pytest.approx(cost["forward"] + per_anchor / 2)
    random_batches = {key: value for key, value in params.items() if key != "batches"}
    assert resources.train_passes(random_batches, cost) == pytest.approx(
        cost["forward"] + per_anchor
    )


def test_a_dataset_without_counts_is_one_line(paper):
    config = copy.deepcopy(paper)
    del config["datasets"]["cub200"]["counts"]
    with pytest.raises(ConfigError, match=r"^datasets\.cub200: no `counts`") as error:
        resources.train_runtime(config, "cub200", "resnet50", "vanilla")
    assert "\n" not in str(error.value)


def test_counts_are_no_part_of_any_spec(paper):
    """A corrected image count must not retrain or re-prepare anything; nor a new url."""
    from robdml.specs import data_spec, train_spec

    assert "counts" not in train_spec(paper, "cub200", "resnet50", "vanilla", 0)["dataset"]
    assert not {"counts", "raw_files"} & set(data_spec(paper, "cub200"))
    assert "data_spec(" in (REPO / "workflow/rules/data.smk").read_text()


def test_the_cost_model_imports_no_scientific_package(tmp_path):
    """The Snakefile's planning uses it (tests/workflow/test_workflow.py plans with torch
    blocked)."""
    code = (
        "import sys\n"
        "from robdml.config import load_config\n"
        "from robdml import resources\n"
        "config = load_config()\n"
        "print(resources.train_runtime(config, 'cub200', 'resnet50', 'eat'))\n"
        "banned = {'torch', 'torchvision', 'numpy', 'sklearn', 'pandas', 'seaborn'}\n"
        "assert not banned & set(sys.modules), banned & set(sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout) > 0


# ------------------------------------------------------------------ the rules and gpu_hours.py


def dry_run_output(configfile, tmp_path) -> str:
    configfiles = [str(REPO / "config" / configfile)]
    return gpu_hours.dry_run(configfiles, tmp_path)


@pytest.fixture(scope="module", params=["demo.yaml", "cub_quick.yaml"])
def planned(request, tmp_path_factory):
    """(config, dry run's printed output) of a forced dry run: the demo (kept adversarial sets,
    CPU) and the smallest paper-rule config (temporary sets, transfer, members, cuda)."""
    config = load_config(REPO / "config" / request.param)
    return config, dry_run_output(request.param, tmp_path_factory.mktemp("work"))


def expected(config: dict, rule: str, w: dict) -> tuple[int, int]:
    """(runtime, mem_mb) of a job of `rule` with wildcards `w`, as the cost model gives them
    for what the job does (attacks crafted, sets evaluated)."""
    ids = (config, w.get("dataset"), w.get("backbone"), w.get("defense"))
    if rule == "train":
        return resources.train_runtime(*ids), resources.mem_mb(config, "train", w["dataset"])
    if rule == "attack":
        n_eps = max(len(jobs.attack_eps(config, a)) for a in jobs.attack_jobs(config)[w["job"]])
        return (
            resources.minutes(config, resources.attack_job_seconds(*ids, w["job"]), 1),
            resources.mem_mb(config, "attack", w["dataset"], n_eps),
        )
    if rule == "attack_members":
        return (
            resources.minutes(config, resources.members_job_seconds(*ids), 1),
            resources.mem_mb(config, "attack", w["dataset"], 1),
        )
    if rule == "transfer":
        seconds = resources.transfer_job_seconds(*ids, int(w["seed"]))
        return resources.minutes(config, seconds, 1), resources.mem_mb(
            config, "evaluate", w["dataset"]
        )
    if rule == "prepare_data":
        return resources.fixed_runtime(config, "prepare"), resources.mem_mb(config, "prepare")
    if rule == "tsne":
        return resources.fixed_runtime(config, "report"), resources.mem_mb(
            config, "tsne", w["dataset"]
        )
    assert rule in ("tables", "figures", "sanity", "summary", "training_curves", "cards"), rule
    return resources.fixed_runtime(config, "report"), resources.mem_mb(config, "small")


def test_every_job_requests_what_the_cost_model_gives(planned):
    config, output = planned
    jobs = [job for job in gpu_hours.parse_jobs(output) if "runtime" in job["resources"]]
    rules = {job["rule"] for job in jobs}
    assert {"train", "attack", "tables", "tsne", "prepare_data"} <= rules
    if not config["keep_adversarial_images"]:  # the paper's rules, all of them
        assert {"attack_members", "transfer"} <= rules
    for job in jobs:
        got = (job["resources"]["runtime"], job["resources"]["mem_mb"])
        assert got == expected(config, job["rule"], job["wildcards"]), job


def test_gpu_hours_prints_the_dry_runs_requested_hours(planned, tmp_path):
    """The command's totals are the sums of the dry run's own `resources:` lines."""
    config, output = planned
    lines = re.findall(r"^\s+resources: (.*)$", output, flags=re.M)
    runtime = [int(m[1]) if (m := re.search(r"\bruntime=(\d+)", line)) else 0 for line in lines]
    gpus = [int(m[1]) if (m := re.search(r"\bgpu=(\d+)", line)) else 0 for line in lines]
    configfile = "demo.yaml" if config["device"] == "cpu" else "cub_quick.yaml"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/gpu_hours.py"), "--configfile",
         str(REPO / "config" / configfile)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    result = dict(re.findall(r"(\w+)=([\d.]+)", run.stdout.strip().splitlines()[-1]))
    printed = 0.05 + 1e-9  # one decimal: at most half a unit off, plus float noise at the half
    assert float(result["total_gpu_hours"]) == pytest.approx(
        sum(g * r for g, r in zip(gpus, runtime, strict=True)) / 60, abs=printed
    )
    assert float(result["job_hours"]) == pytest.approx(sum(runtime) / 60, abs=printed)
    assert int(result["jobs"]) == len(lines)
    if config["device"] == "cuda":
        assert float(result["total_gpu_hours"]) > 0 and int(result["gpu_jobs"]) > 0
    else:
        assert float(result["total_gpu_hours"]) == 0
    table = run.stdout.splitlines()[:-1]
    assert table[0].startswith("| defense | jobs | GPU jobs | requested GPU-hours |")
    assert [row.split(" | ")[0].lstrip("| ") for row in table[2:-2]] == list(config["defenses"])


def test_gpu_hours_by_job_kind_splits_the_same_totals():
    """`--by job`: one row per rule (attack jobs per group), the same RESULT line."""
    runs = [
        subprocess.run(
            [sys.executable, str(REPO / "benchmarks/gpu_hours.py"), "--configfile",
             str(REPO / "config/demo.yaml"), *by],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()
        for by in ([], ["--by", "job"])
    ]  # fmt: skip
    totals = [dict(item.split("=") for item in run[-1].split()[1:]) for run in runs]
    assert totals[0].keys() == totals[1].keys()
    for key, value in totals[0].items():  # one decimal: sums in another order may round apart
        assert float(value) == pytest.approx(float(totals[1][key]), abs=0.1 + 1e-9), key
    kinds = [row.split(" | ")[0].lstrip("| ") for row in runs[1][2:-2]]
    assert {"train", "attack label_free", "attack label_aware", "attack_members"} <= set(kinds)
    assert runs[1][0].startswith("| job | jobs |")


# ------------------------------------------------------------------ the expected cost

SHIPPED = sorted(path.name for path in (REPO / "config").glob("*.yaml"))


def cnn_forward_flops(widths: list[int], channels: int, size: int, embedding_dim: int) -> int:
    """The small CNN's forward FLOPs by hand, 2 per multiply-accumulate: each 3x3 convolution
    at its input's resolution (halved by the max-pooling after it), then the linear head."""
    flops = 0
    for width in widths:
        flops += 2 * size * size * width * channels * 3 * 3
        channels, size = width, size // 2
    return flops + 2 * channels * embedding_dim


def test_the_flop_count_is_the_models_convolutions_and_head(demo, paper):
    cnn, glyphs = demo["backbones"]["cnn"], demo["datasets"]["glyphs"]
    by_hand = cnn_forward_flops(cnn["widths"], glyphs["channels"], 16, cnn["embedding_dim"])
    assert by_hand == 1_261_568
    assert forward_flops(cnn, glyphs) == by_hand
    at_32 = forward_flops(cnn, {**glyphs, "image_size": 32})
    assert at_32 == cnn_forward_flops(cnn["widths"], glyphs["channels"], 32, cnn["embedding_dim"])
    head = 2 * cnn["widths"][-1] * cnn["embedding_dim"]
    assert at_32 - head == 4 * (by_hand - head)  # convolutions grow with the pixel count
    # FlopCounterMode's convention: 2 FLOPs per multiply-accumulate (ResNet-50: 4.09 GMACs)
    resnet50 = forward_flops(paper["backbones"]["resnet50"], paper["datasets"]["cub200"])
    assert resnet50 == pytest.approx(8.18e9, rel=0.01)


def test_expected_cost_of_a_demo_training_job_by_hand(demo):
    """Vanilla training of the demo's CNN: train images x epochs forward+backward passes, each
    1 / pass_cost.forward forwards of the counted FLOPs, at utilisation x peak; k-means runs
    cost what the request's cost model says."""
    glyphs, cnn = demo["datasets"]["glyphs"], demo["backbones"]["cnn"]
    flops = forward_flops(cnn, glyphs)
    processor = demo["resources"]["expected"]["cpu"]
    epochs = demo["recipes"]["glyphs"]["epochs"]
    by_hand = (
        glyphs["counts"]["train_images"]
        * epochs
        * flops
        / demo["resources"]["pass_cost"]["forward"]
    ) / (processor["utilisation"] * processor["peak_tflops"] * 1e12)
    work = resources.train_work(demo, "glyphs", "vanilla")
    assert resources.expected_seconds(demo, "glyphs", "cnn", work, flops) == pytest.approx(by_hand)
    assert 5 < by_hand < 30  # the demo's epochs took 0.9-1.6 s
    two_kmeans = resources.Work(kmeans=2)
    assert resources.expected_seconds(demo, "glyphs", "cnn", two_kmeans, flops) == pytest.approx(
        2 * resources.kmeans_seconds(demo, "glyphs", "cnn")
    )
    minutes = resources.expected_minutes(demo, by_hand)
    assert minutes == pytest.approx(demo["resources"]["startup_min"] + by_hand / 60)


def test_the_request_and_the_expected_cost_count_the_same_passes(paper):
    """For k-means-free work, expected / requested seconds is one constant per model: the
    stated throughput over the throughput the counted FLOPs give."""
    flops = forward_flops(paper["backbones"]["resnet50"], paper["datasets"]["cub200"])
    processor, cost = paper["resources"]["expected"]["cuda"], paper["resources"]["pass_cost"]
    flop_throughput = processor["utilisation"] * processor["peak_tflops"] * 1e12 * cost["forward"]
    ratio = resources.throughput(paper, "cub200", "resnet50") / (flop_throughput / flops)
    for defense in paper["defenses"]:
        work = resources.train_work(paper, "cub200", defense)
        expected = resources.expected_seconds(paper, "cub200", "resnet50", work, flops)
        requested = resources.train_seconds(paper, "cub200", "resnet50", defense)
        assert expected == pytest.approx(ratio * requested), defense


@pytest.mark.parametrize("configfile", SHIPPED)
def test_expected_hours_are_below_the_requested_hours(configfile, tmp_path):
    """Requests are upper bounds: over every job of the cost model (train, attack, members,
    transfer) of a shipped config's dry run, the expected minutes sum below the requested
    ones (every attempt of the time limit a job needs)."""
    overlays = [] if configfile == "config.yaml" else [str(REPO / "config" / configfile)]
    config = load_config(*overlays)
    expected = requested = 0.0
    for job in gpu_hours.parse_jobs(gpu_hours.dry_run(overlays, tmp_path)):
        work = gpu_hours.job_work(config, job)
        if work is not None:
            expected += gpu_hours.expected_minutes(config, job, work)
            requested += gpu_hours.attempts(config, job, work) * job["resources"]["runtime"]
    assert 0 < expected < requested


def test_the_measured_overlay_round_trips_through_the_schema(paper, tmp_path):
    """gpu_check's overlay of a (fake) measurement: ResNet-50 trained at 8,000 img/s at 112 px
    is 2,000 img/s at the stated 224 px, and its utilisation makes the expected cost of one
    forward+backward pass exactly one measured image's time."""
    import gpu_check

    backbone = paper["backbones"]["resnet50"]
    dataset = {**paper["datasets"]["cub200"], "image_size": 112}
    overlay = gpu_check.measured_overlay(paper, "cuda", backbone, dataset, 8000.0, "Fake GPU")
    path = tmp_path / "measured_resources.yaml"
    gpu_check.write_overlay(path, overlay, "a fake measurement")
    measured = load_config(path)
    resources_ = measured["resources"]
    assert resources_["throughput_img_per_s"]["cuda"]["resnet50"] == 2000
    assert (
        resources_["throughput_img_per_s"]["cuda"]["googlenet"]
        == (paper["resources"]["throughput_img_per_s"]["cuda"]["googlenet"])
    )  # not measured: unchanged
    assert (
        resources_["expected"]["cuda"]["peak_tflops"]
        == (paper["resources"]["expected"]["cuda"]["peak_tflops"])
    )
    assert resources_["expected"]["cuda"]["name"].startswith("Fake GPU, measured")
    flops = forward_flops(backbone, dataset)
    one_pass = resources.expected_seconds(measured, "cub200", "resnet50", resources.Work(1), flops)
    assert one_pass == pytest.approx(1 / 8000, rel=1e-3)
