"""HPC support: the SLURM profile, GPU resources of the rules, GPU slots on a multi-GPU
workstation, and an end-to-end run through a real single-node SLURM cluster.

Tests marked `slurm` need a running cluster (`.ci/start-slurm.sh`, as root) and are skipped
with the reason without one (set ROBDML_REQUIRE_SLURM=1 to make that a failure, as CI
does); the others run in the default `pytest`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import copy_repo
from robdml.config import read_config

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GPU_RULES = {"train", "attack", "attack_members", "transfer"}
CPU_RULES = {"download", "extract", "prepare_data", "tables", "figures", "sanity", "tsne",
             "summary", "training_curves", "cards"}  # fmt: skip


def workflow_env(src: Path = REPO / "src") -> dict:
    """Environment of a snakemake call: this venv first on PATH, `src` importable, no
    user profile."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(src)
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def job_blocks(log: str) -> list[tuple[str, str, str]]:
    """(kind, rule, body) of every job block Snakemake printed: kind is 'rule' or 'localrule'."""
    heads = list(re.finditer(r"^(localrule|rule) (\w+):$", log, flags=re.M))
    ends = [match.start() for match in heads[1:]] + [len(log)] if heads else []
    return [
        (m.group(1), m.group(2), log[m.end() : end]) for m, end in zip(heads, ends, strict=True)
    ]


# ------------------------------------------------------------------ profile and resources


SITE_PROFILE = REPO / "examples" / "slurm_profile" / "config.yaml"
WORKFLOW_PROFILE = REPO / "profiles" / "default" / "config.yaml"


def test_site_profile_is_portable():
    """The example site profile (copied to ~/.config/snakemake/slurm/) sets the executor and
    the site's defaults; GPUs only through resources; preempted jobs requeued."""
    profile = yaml.safe_load(SITE_PROFILE.read_text())
    assert profile["executor"] == "slurm" and profile["slurm-requeue"] is True
    assert profile["jobs"] >= 1 and profile["latency-wait"] >= 1
    defaults = profile["default-resources"]
    assert {"mem_mb", "runtime"} <= set(defaults)
    # cpus_per_task would win over the GPU rules' cpus_per_gpu in the plugin
    assert "cpus_per_task" not in defaults
    extra = str(defaults.get("slurm_extra", ""))
    assert "--gres" not in extra and "--gpus" not in extra
    # sacct polling hangs without accounting and after an scancel ("CANCELLED by <uid>")
    assert profile["slurm-status-command"] == "squeue"


def test_workflow_profile_holds_no_site_setting():
    """profiles/default/ (loaded by Snakemake itself) wins over the site profile key by key,
    so it must not set what a site sets: executor, jobs, default-resources (partition)."""
    profile = yaml.safe_load(WORKFLOW_PROFILE.read_text())
    assert profile["retries"] >= 1 and profile["rerun-incomplete"] is True
    assert not {"executor", "jobs", "default-resources", "set-resources"} & set(profile)
    assert not [key for key in profile if key.startswith("slurm")]


def dry_run_resources(tmp_path: Path, device: str) -> dict[str, set[str]]:
    """Resources line of every job in a dry run of the demo on `device`, by rule."""
    config = read_config(REPO / "config" / "demo.yaml")
    config["device"] = device
    configfile = tmp_path / f"{device}.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["snakemake", "-n", "--forceall", "--cores", "4", "--configfile", str(configfile),
         "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path / device)],
        cwd=tmp_path, env=workflow_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    resources: dict[str, set[str]] = {}
    for _, rule, body in job_blocks(result.stdout + result.stderr):
        line = re.search(r"^\s*resources: (.*)$", body, flags=re.M)
        resources.setdefault(rule, set()).add(line.group(1) if line else "")
    assert "train" in resources and "tables" in resources, resources
    return resources


def test_gpu_rules_request_a_gpu_and_cpus_per_gpu_cpu_rules_do_not(tmp_path):
    threads = read_config(REPO / "config" / "demo.yaml")["threads"]
    on_cuda = dry_run_resources(tmp_path, "cuda")
    for rule, lines in on_cuda.items():
        for line in lines:
            if rule in GPU_RULES:
                assert "gpu=1" in line.split(", ") and f"cpus_per_gpu={threads}" in line, line
            if rule in CPU_RULES or rule == "all":
                assert not re.search(r"\bgpu=[1-9]", line), (rule, line)
    for rule, lines in dry_run_resources(tmp_path, "cpu").items():
        for line in lines:
            assert not re.search(r"\bgpu=[1-9]", line), (rule, line)


# ------------------------------------------------------------------ real SLURM cluster


def cluster_problem() -> str | None:
    """Why no SLURM cluster can be used here, or None when one answers."""
    for tool in ("sbatch", "sinfo", "squeue", "scancel", "scontrol"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH: no SLURM here (start one: sudo .ci/start-slurm.sh)"
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "`sinfo` timed out: no slurmctld answers"
    if result.returncode != 0:
        return f"no SLURM cluster answers (`sinfo`: {result.stderr.strip()})"
    states = {state.rstrip("*~#!%$@^-") for state in result.stdout.split()}
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no usable SLURM node (states: {sorted(states) or 'none'})"
    return None


def has_gpu_gres() -> bool:
    result = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True)
    return "gpu" in result.stdout


# The attack job of the tiny run: one attack over these eps, each eps (one unit of work) about
# 10-20 s on 2 cores, so the whole job (1.5-2.5 minutes with its start-up) outlasts the short
# partition's 1-minute limit (SLURM kills it there, at 60-90 s) while every attempt finishes at
# least one unit.
TIME_LIMITED_EPS = [1, 2, 4, 8, 16, 32]
TIME_LIMITED_STEPS = 50


def tiny_config() -> dict:
    """config/demo.yaml cut down: one defense, few epochs, one attack whose job outlasts the
    1-minute time limit (`resources.time_limit_min: 1`, the short partition's MaxTime); the
    cost model is told so (a low throughput), so the attack rule gets the retries it takes."""
    config = read_config(REPO / "config" / "demo.yaml")
    config["threads"] = 1
    config["recipes"]["glyphs"]["epochs"] = 4
    defense, attack = config["run"]["defenses"][0], config["attack_suites"]["label_free"][0]
    config["run"]["defenses"] = [defense]
    config["attacks"][attack]["steps"] = TIME_LIMITED_STEPS
    config["attack_suites"] = {"label_free": [attack], "label_aware": []}
    config["transfer"] = {**config["transfer"], "attacks": [], "source_defenses": []}
    config["ensemble_members"] = {"evaluate": False, "attacks": []}
    config["report"]["tsne"] |= {"defenses": [defense], "attack": attack}
    config["evaluation"]["eps_255"] = TIME_LIMITED_EPS
    config["sanity"]["breaking_eps_255"] = None  # not in the sweep: check (a)'s near chance
    config["evaluation"]["chance_repeats"] = 1
    resources = config["resources"]
    resources["mem_mb"] |= {"small": 1000, "prepare": 2000, "torch": 1500}  # <= 2 GB
    resources |= {"time_limit_min": 1, "startup_min": 0.25}
    resources["throughput_img_per_s"]["cpu"]["small_cnn"] = 12000  # attack: 10 attempts
    return config


def site_profile(directory: Path, partition: str) -> Path:
    """The example site profile as a user sets it up: copied outside the repository, with
    their partition; the repository's workflow profile is loaded by Snakemake itself."""
    profile = yaml.safe_load(SITE_PROFILE.read_text())
    profile["default-resources"]["slurm_partition"] = partition
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def our_jobs(workdir: Path) -> list[dict]:
    """Queued/running SLURM jobs whose working directory is `workdir`."""
    result = subprocess.run(
        ["squeue", "-h", "-o", "%i|%T|%k|%Z"], capture_output=True, text=True, timeout=30
    )
    jobs = []
    for line in result.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 4 and Path(parts[3]) == workdir:
            jobs.append({"id": parts[0], "state": parts[1], "comment": parts[2]})
    return jobs


def comment_rule(comment: str) -> str | None:
    """The rule of a job from the comment the plugin gives it: rule_<rule>[_wildcards_...]."""
    match = re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", comment)
    return match.group(1) if match else None


def show_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (empty once slurmctld forgot the job: MinJobAge)."""
    result = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30
    )
    fields = re.findall(r"(\w[\w/:]*)=(\S*)", result.stdout) if result.returncode == 0 else []
    return dict(fields)


def slurm_records(job_ids) -> dict[str, dict]:
    """{job id: state, comment, workdir, gpu (requested)} from SLURM's own records:
    accounting (sacct) where the cluster has it, else slurmctld (scontrol)."""
    records = {}
    result = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids),
         "--format=JobIdRaw,State,Comment,WorkDir,ReqTRES%300"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if result.returncode == 0:
        for line in result.stdout.splitlines():
            job_id, state, comment, workdir, tres = line.split("|", 4)
            records[job_id] = {"state": state.split()[0], "comment": comment,
                               "workdir": workdir, "gpu": "gres/gpu" in tres}  # fmt: skip
    for job_id in set(job_ids) - set(records):
        shown = show_job(job_id)
        if shown:
            records[job_id] = {
                "state": shown.get("JobState", ""),
                "comment": shown.get("Comment", ""),
                "workdir": shown.get("WorkDir", ""),
                "gpu": "gpu" in shown.get("TresPerJob", "") + shown.get("TRES", ""),
            }
    return records


def slurmctld_submissions() -> set[str] | None:
    """Job ids slurmctld logged as batch submissions (None: its log is not readable)."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    match = re.search(r"^SlurmctldLogFile\s*=\s*(\S+)", config.stdout, flags=re.M)
    if not match or not os.access(match.group(1), os.R_OK):
        return None
    text = Path(match.group(1)).read_text(errors="replace")
    return set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text))


def submitted_jobs(log: str) -> tuple[dict[str, str], list[str]]:
    """({SLURM job id: rule} of every submission, retries included, [rules run locally])
    from a snakemake log; fails when a non-local job was not submitted with sbatch."""
    submissions: dict[str, list[str]] = {}
    for job, slurm_id in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log):
        submissions.setdefault(job, []).append(slurm_id)
    slurm_ids, local = {}, []
    for kind, rule, body in job_blocks(log):
        jobid = re.search(r"^\s*jobid: (\d+)$", body, flags=re.M)
        if kind == "localrule":
            local.append(rule)
            assert not (jobid and jobid.group(1) in submissions), f"local {rule} submitted"
        elif jobid and rule != "all":
            assert jobid.group(1) in submissions, f"job {rule} ({jobid.group(1)}) not sbatch'ed"
            slurm_ids |= dict.fromkeys(submissions[jobid.group(1)], rule)
    return slurm_ids, local


def strip_timings(value):
    """A metrics JSON without its wall-clock fields."""
    if isinstance(value, dict):
        return {
            key: strip_timings(item)
            for key, item in value.items()
            if key not in {"seconds", "timings", "wall_seconds"}
        }
    if isinstance(value, list):
        return [strip_timings(item) for item in value]
    return value


SHORT_PARTITION = os.environ.get("SLURM_SHORT", "short")  # .ci/start-slurm.sh: MaxTime=1


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory):
    """The tiny demo through `snakemake --profile <site profile>` on the short partition
    (1-minute limit): its training job is cancelled (scancel) after its first checkpoint, its
    attack job outlasts the limit; both must resume on their retries and the run complete.
    Meanwhile the same config runs locally (`--cores 2`). Every snakemake call is bounded."""
    problem = cluster_problem()
    if problem:
        if os.environ.get("ROBDML_REQUIRE_SLURM") == "1":
            pytest.fail(f"ROBDML_REQUIRE_SLURM=1 but {problem}")
        pytest.skip(problem)
    base = tmp_path_factory.mktemp("slurm")
    tiny = base / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    on_slurm, local = copy_repo(base / "slurm_run"), copy_repo(base / "local_run")
    profile = site_profile(base / "site_profile", SHORT_PARTITION)
    gpu = has_gpu_gres()
    # The example site profile plus a short first status poll (speed only) and, on a node with
    # a (fake) GPU, a GPU request for training: with `device: cpu` it runs on the CPU, but it
    # must be scheduled as a GPU job while the other rules stay CPU jobs.
    command = ["snakemake", "all", "--profile", str(profile), f"--configfile={tiny}",
               "--slurm-init-seconds-before-status-checks", "3"]  # fmt: skip
    if gpu:
        command += ["--set-resources", "train:gpu=1", "train:cpus_per_gpu=1"]
    logs = {name: base / f"{name}.log" for name in ("local", "slurm")}
    runs = {"slurm_dir": on_slurm, "local_dir": local, "gpu": gpu, "logs": logs, "seconds": {}}
    started = time.monotonic()
    processes = []

    def start(name, args, cwd):
        with logs[name].open("w") as handle:
            process = subprocess.Popen(
                args, cwd=cwd, env=workflow_env(cwd / "src"), stdout=handle,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        processes.append(process)
        return process

    try:
        local_run = start(
            "local",
            ["timeout", "-k", "10", "600", "snakemake", "--cores", "2", f"--configfile={tiny}"],
            local,
        )
        run = start("slurm", ["timeout", "-k", "10", "840", *command], on_slurm)
        # wait for the training job to run in SLURM and write its first checkpoint
        deadline, train, shown = time.monotonic() + 240, None, {}
        while time.monotonic() < deadline and run.poll() is None and train is None:
            for job in our_jobs(on_slurm):
                shown.setdefault(job["id"], show_job(job["id"]))
            if list((on_slurm / "results" / "models").glob("**/checkpoint.pt")):
                running = [j for j in our_jobs(on_slurm) if j["state"] == "RUNNING"]
                train = next(
                    (j["id"] for j in running if comment_rule(j["comment"]) == "train"), None
                )
            time.sleep(0.5)
        assert train, "no running training job with a checkpoint:\n" + logs["slurm"].read_text()
        runs["cancelled_train"], runs["cancelled_train_show"] = train, show_job(train)
        subprocess.run(["scancel", train], check=True, timeout=30)
        while run.poll() is None:  # every job's request, captured while SLURM knows it
            for job in our_jobs(on_slurm):
                shown.setdefault(job["id"], show_job(job["id"]))
            time.sleep(1)
        runs["slurm_rc"] = run.wait(timeout=30)
        for job_id in submitted_jobs(logs["slurm"].read_text())[0]:  # jobs too short to poll
            shown.setdefault(job_id, show_job(job_id))  # slurmctld keeps them MinJobAge s
        runs["shown"] = shown
        runs["seconds"]["slurm_run"] = round(time.monotonic() - started, 1)
        runs["local_rc"] = local_run.wait(timeout=620)
        runs["seconds"]["local_run"] = round(time.monotonic() - started, 1)
        print(f"\nSLURM test timings (s): {json.dumps(runs['seconds'])}")
        yield runs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        leftovers = [job["id"] for job in our_jobs(on_slurm)]
        if leftovers:
            subprocess.run(["scancel", *leftovers], timeout=30)


def log_text(runs, name) -> str:
    return runs["logs"][name].read_text(errors="replace")


def all_submitted(runs) -> dict[str, str]:
    return submitted_jobs(log_text(runs, "slurm"))[0]


@pytest.mark.slurm
def test_slurm_and_local_runs_complete(slurm_runs):
    assert slurm_runs["slurm_rc"] == 0, log_text(slurm_runs, "slurm")[-6000:]
    assert slurm_runs["local_rc"] == 0, log_text(slurm_runs, "local")[-6000:]


@pytest.mark.slurm
def test_every_non_local_job_went_through_sbatch(slurm_runs):
    slurm_ids, local_rules = submitted_jobs(log_text(slurm_runs, "slurm"))
    rules = set(slurm_ids.values())
    assert {"train", "attack", "prepare_data", "tables", "figures"} <= rules, rules
    assert not set(local_rules) & (GPU_RULES | CPU_RULES - {"download"}), local_rules
    records = slurm_records(list(slurm_ids))
    assert set(records) == set(slurm_ids), "SLURM has no record of some jobs"
    for job_id, rule in slurm_ids.items():
        record = records[job_id]
        assert comment_rule(record["comment"]) == rule, record
        assert Path(record["workdir"]) == slurm_runs["slurm_dir"], record
        if job_id == slurm_runs["cancelled_train"]:
            assert record["state"] == "CANCELLED", record
        else:
            expected = {"COMPLETED", "TIMEOUT"} if rule == "attack" else {"COMPLETED"}
            assert record["state"] in expected, (job_id, rule, record)
    logged = slurmctld_submissions()
    if logged is not None:  # readable where the test runs as root (CI)
        assert set(slurm_ids) <= logged, set(slurm_ids) - logged


@pytest.mark.slurm
def test_no_job_asks_for_more_than_the_time_limit(slurm_runs):
    """`resources.time_limit_min: 1`: every job asks for at most the short partition's
    MaxTime (a longer request would never start there)."""
    shown = slurm_runs["shown"]
    assert set(all_submitted(slurm_runs)) <= set(shown), "jobs SLURM never showed"
    for job_id, fields in shown.items():
        assert fields.get("TimeLimit") == "00:01:00", (job_id, fields.get("TimeLimit"))
        assert fields.get("Partition") == SHORT_PARTITION, fields


@pytest.mark.slurm
def test_results_equal_a_local_run(slurm_runs):
    on_slurm = slurm_runs["slurm_dir"] / "results" / "metrics"
    local = slurm_runs["local_dir"] / "results" / "metrics"
    files = sorted(path.relative_to(local) for path in local.glob("**/*.json"))
    assert files, "the local run wrote no metrics"
    assert sorted(path.relative_to(on_slurm) for path in on_slurm.glob("**/*.json")) == files
    for name in files:
        slurm_metrics = strip_timings(json.loads((on_slurm / name).read_text()))
        local_metrics = strip_timings(json.loads((local / name).read_text()))
        assert slurm_metrics == local_metrics, name


@pytest.mark.slurm
def test_gpu_rule_is_submitted_with_a_gpu_request_cpu_rule_is_not(slurm_runs):
    if not slurm_runs["gpu"]:
        pytest.skip("the SLURM node advertises no GPU (start it with SLURM_FAKE_GPUS=1)")
    shown = slurm_runs["cancelled_train_show"]  # captured while it ran
    assert "gpu" in shown.get("TresPerJob", ""), shown
    by_rule = {rule: job_id for job_id, rule in all_submitted(slurm_runs).items()}
    cpu_jobs = [by_rule[rule] for rule in ("tables", "figures") if rule in by_rule]
    assert cpu_jobs and "train" in by_rule
    records = slurm_records([by_rule["train"], *cpu_jobs])
    assert records[by_rule["train"]]["gpu"], records
    for job_id in cpu_jobs:
        assert not records[job_id]["gpu"], records[job_id]


@pytest.mark.slurm
def test_cancelled_training_resumes_from_its_checkpoint(slurm_runs):
    """The scancel-ed training job is retried by the same run and resumes."""
    assert slurm_runs["cancelled_train"] in log_text(slurm_runs, "slurm")
    train_logs = list((slurm_runs["slurm_dir"] / "results" / "logs" / "train").glob("**/*.log"))
    assert len(train_logs) == 1, train_logs
    text = train_logs[0].read_text()
    assert re.search(r"resuming from .*checkpoint\.pt after epoch \d+", text), text[-3000:]
    models = list((slurm_runs["slurm_dir"] / "results" / "models").glob("**/model.pt"))
    assert models and not list(models[0].parent.glob("checkpoint.pt"))


@pytest.mark.slurm
def test_attack_killed_at_the_time_limit_resumes_its_finished_units(slurm_runs):
    """SLURM killed the attack job at its limit (TIMEOUT); its retry skipped the (attack,
    eps) units already done, and the last attempt's log says which."""
    attack_ids = [i for i, rule in all_submitted(slurm_runs).items() if rule == "attack"]
    records = slurm_records(attack_ids)
    states = [records[job_id]["state"] for job_id in sorted(attack_ids, key=int)]
    assert "TIMEOUT" in states and states[-1] == "COMPLETED", states
    (log,) = (slurm_runs["slurm_dir"] / "results" / "logs" / "attack").glob("**/*.log")
    skipped = re.findall(r"resuming: .* already done", log.read_text())
    assert skipped, log.read_text()[-3000:]
    assert not list((slurm_runs["slurm_dir"] / "results" / "metrics").glob("**/*.progress"))
