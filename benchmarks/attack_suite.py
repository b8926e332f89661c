"""Cost and strength of the configured attack suites against a baseline configuration, run in
the same process on the same models.

Per model, the white-box units of its `label_free` and `label_aware` attack jobs (robdml.jobs:
each suite attack at each eps of the sweep, and check (a)'s breaking-eps probe) under the
configuration and under the baseline (the configuration with `--baseline` merged on it), each
crafted on its CPU fast path (the `cpu` section). A unit both share (same attack spec, eps,
seeds and fast path: the same adversarial set) is crafted once. Per
unit: seconds, forward+backward passes through the model per test image (counted by a hook),
and the metrics of the adversarial set, scored as the workflow scores it (robdml.evaluation).
Per model, threat model and eps of the baseline: each metric's worst case under both, and the
difference (negative: the configuration's suite is stronger there).

    PYTHONPATH=src python benchmarks/attack_suite.py --config config/demo.yaml \
        --baseline '{"evaluation": {"eps_255": [8, 64]}}' \
        --models results/models/glyphs/cnn/*/seed0/model.pt --data results/data/glyphs/test.pt

`--extra` measures more attacks at the main eps on their own (e.g. other step counts).
"""

import argparse
import copy
import json
import sys
import time

import pandas as pd
import torch
from torch import nn

from robdml.attacks.runner import attack_test_set
from robdml.config import deep_merge, load_config, load_schema, read_config, validate_config
from robdml.data.prepared import load_split
from robdml.evaluation import record
from robdml.fast_path import configure_fast_path
from robdml.io import spec_hash
from robdml.jobs import LABEL_AWARE, LABEL_FREE, attack_jobs, main_eps
from robdml.models import load_model
from robdml.runtime import setup
from robdml.specs import attack_job_spec
from robdml.worst_case import threat_models

METRICS = ["nmi", "ari", "f1", "recall@1"]


class PassCounter(nn.Module):
    """Counts images sent through the model with gradients on (attack steps) and off."""

    def __init__(self, model):
        super().__init__()
        self.model, self.gradient_images, self.plain_images = model, 0, 0

    def forward(self, images):
        if torch.is_grad_enabled():
            self.gradient_images += len(images)
        else:
            self.plain_images += len(images)
        return self.model(images)


def suite_units(config: dict, path: str) -> dict[tuple[str, float], dict]:
    """(attack, eps) -> attack spec, for every white-box unit of the suite jobs of the model
    at `path` (.../<dataset>/<backbone>/<defense>/seed<N>/model.pt)."""
    dataset, backbone, defense, seed = path.split("/")[-5:-1]
    units = {}
    for job in (LABEL_FREE, LABEL_AWARE):
        if job not in attack_jobs(config):
            continue
        spec = attack_job_spec(config, dataset, backbone, defense, int(seed[4:]), job)
        for attack in spec["attacks"]:
            units |= {(attack["name"], eps): attack["spec"] for eps in attack["eps_255"]}
    return units


def keyed(units: dict, cpu: dict) -> dict:
    """(name, eps, spec hash, CPU fast-path hash) -> (attack spec, CPU fast-path settings)."""
    return {(name, eps, spec_hash(p), spec_hash(cpu)): (p, cpu) for (name, eps), p in units.items()}


def measure(model, model_spec, split, params, eps, evaluation, fast_path) -> dict:
    """One attack at one eps under a CPU fast path: seconds crafting, passes per image, and the
    set's metrics (measured with the plain model, as attack jobs measure)."""
    counter = PassCounter(copy.deepcopy(model))  # the fast path may fold and re-lay it out
    started = time.perf_counter()
    (result,) = attack_test_set(
        counter, split["images"], split["labels"], params, [eps], params["attacker_seed"],
        params["batch_size"], fast_path.device, fast_path,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    metrics = record(model, model_spec, result["images"], split, {}, evaluation, fast_path.device)
    n = len(split["labels"])
    return {
        "seconds": seconds,
        "gradient_passes": counter.gradient_images / n,
        "plain_passes": counter.plain_images / n,
        **{metric: metrics["metrics"][metric] for metric in METRICS},
    }


def worst_cases(units: pd.DataFrame, suites: dict) -> pd.DataFrame:
    """Per threat model and eps, each metric's minimum over the suite's units measured there."""
    rows = []
    for threat, attacks in threat_models(suites).items():
        found = units[units["attack"].isin(attacks)]
        for eps, at in found.groupby("eps"):
            rows.append({"threat": threat, "eps": eps, **at[METRICS].min().to_dict()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", nargs="+", default=["config/demo.yaml"])
    parser.add_argument("--baseline", required=True, help="JSON merged on the config")
    parser.add_argument("--models", nargs="+", required=True, help="<...>/<defense>/seedN/model.pt")
    parser.add_argument("--data", required=True, help="prepared test split")
    parser.add_argument("--extra", default="{}", help="JSON: more attacks {name: entry}")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = load_config(*args.config)
    overlay = deep_merge(read_config(*args.config), json.loads(args.baseline))
    baseline = validate_config(overlay, load_schema(), source="--baseline")
    evaluation = config["evaluation"]
    seed = evaluation["attack_kmeans_seed"]
    device = setup(args.threads, "cpu", seed)
    split = load_split(args.data)
    extra = {
        (name, main_eps(config)): deep_merge(config["attack_methods"][entry["method"]], entry)
        | {"attacker_seed": seed, "batch_size": evaluation["batch_size"]}
        for name, entry in json.loads(args.extra).items()
    }
    rows, comparisons = [], []
    for path in args.models:
        defense = path.split("/")[-3]
        model, model_spec = load_model(path, device)
        # a unit is (name, eps, spec, CPU fast path): one name may have another spec, or be
        # crafted on another fast path, in the baseline; a set is (eps, spec, fast path)
        ours = keyed(suite_units(config, path), config["cpu"])
        theirs = keyed(suite_units(baseline, path), baseline["cpu"])
        measured = {}
        for unit, (params, settings) in (theirs | ours | keyed(extra, config["cpu"])).items():
            name, eps = unit[:2]
            if unit[1:] not in measured:
                fast_path = configure_fast_path(device, settings)
                measured[unit[1:]] = measure(
                    model, model_spec, split, params, eps, evaluation, fast_path
                )
            row = {"model": defense, "attack": name, "eps": eps, **measured[unit[1:]]}
            row |= {"in_config": unit in ours, "in_baseline": unit in theirs}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)  # progress; the report is stdout
        frame = pd.DataFrame([row for row in rows if row["model"] == defense])
        after = worst_cases(frame[frame["in_config"]], config["attack_suites"])
        before = worst_cases(frame[frame["in_baseline"]], baseline["attack_suites"])
        paired = before.merge(after, on=["threat", "eps"], suffixes=("_baseline", ""))
        for metric in METRICS:
            paired[f"{metric}_change"] = paired[metric] - paired[f"{metric}_baseline"]
        comparisons.append(paired.assign(model=defense))
    table = pd.DataFrame(rows)
    print(table.round(4).to_string(index=False))
    changes = pd.concat(comparisons, ignore_index=True)
    columns = ["model", "threat", "eps"] + [f"{metric}_change" for metric in METRICS]
    print("\nworst case, configuration - baseline (negative: stronger now):")
    print(changes[columns].round(4).to_string(index=False))
    cost = {
        label: table[table[flag]].groupby("model")[["gradient_passes", "seconds"]].sum()
        for label, flag in (("config", "in_config"), ("baseline", "in_baseline"))
    }
    print("\nper model, the suite jobs' units summed:")
    print(pd.concat(cost, axis=1).round(1).to_string())
    passes = {label: c["gradient_passes"].mean() for label, c in cost.items()}
    seconds = {label: c["seconds"].sum() for label, c in cost.items()}
    rise = changes[[f"{metric}_change" for metric in METRICS]].max().max()
    print(
        f"RESULT passes_per_image={passes['config']:.1f} baseline={passes['baseline']:.1f}"
        f" ({passes['baseline'] / passes['config']:.2f}x fewer)"
        f" seconds={seconds['config']:.0f} baseline={seconds['baseline']:.0f}"
        f" ({seconds['baseline'] / seconds['config']:.2f}x faster)"
        f" worst_case_largest_rise={rise:+.4f}"
    )


if __name__ == "__main__":
    main()
