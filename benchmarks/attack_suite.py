"""Cost and strength of every attack of the configured suites, against the 10-step `centroid`
attack run in the same process on the same models.

For each trained model and each attack of `attack_suites` (plus `--extra` entries): seconds,
forward+backward passes through the model per test image (input-gradient passes, counted by a
hook), both relative to the 10-step centroid baseline, and the clustering NMI / ARI of the
adversarial set (mean over `evaluation.kmeans_seeds`, scored as robdml.evaluation scores).

    PYTHONPATH=src python benchmarks/attack_suite.py --config config/demo.yaml \
        --models results/models/glyphs/cnn/*/seed0/model.pt \
        --data results/data/glyphs/test.pt --eps 8
"""

import argparse
import json
import time

import pandas as pd
import torch
from torch import nn

from robdml.attacks.runner import attack_test_set
from robdml.config import attack_spec, deep_merge, load_config
from robdml.data.prepared import load_split
from robdml.embedding import embed
from robdml.metrics import evaluate_clustering
from robdml.models import load_model
from robdml.runtime import setup
from robdml.worst_case import threat_models

BASELINE = {
    "method": "centroid", "steps": 10, "step_fraction": 0.25, "restarts": 1,
    "schedule": "sign", "perturbed_fraction": 1.0, "kmeans_n_init": 1,
}  # fmt: skip


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


def measure(model, split, params, eps, seed, evaluation, device) -> dict:
    counter = PassCounter(model)
    started = time.perf_counter()
    (result,) = attack_test_set(
        counter, split["images"], split["labels"], params, [eps], seed,
        evaluation["batch_size"], device,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    embeddings = embed(model, result["images"], evaluation["batch_size"], device)
    metrics = evaluate_clustering(
        embeddings.numpy(), split["labels"].numpy(), evaluation["kmeans_seeds"],
        evaluation["kmeans_n_init"], backend=evaluation["kmeans_backend"],
    )  # fmt: skip
    n = len(split["labels"])
    return {
        "seconds": seconds,
        "gradient_passes": counter.gradient_images / n,
        "plain_passes": counter.plain_images / n,
        "nmi": metrics["nmi"],
        "nmi_std": metrics["nmi_std"],
        "ari": metrics["ari"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config/demo.yaml")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--data", required=True, help="prepared test split")
    parser.add_argument("--eps", type=float, default=8.0, help="in 1/255")
    parser.add_argument("--extra", default="{}", help="JSON: more attacks {name: entry}")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = load_config(args.config)
    evaluation = config["evaluation"]
    device = setup(args.threads, "cpu", evaluation["attack_kmeans_seed"])
    split = load_split(args.data)
    seed = evaluation["attack_kmeans_seed"]
    suites = config["attack_suites"]
    attacks = {"centroid_10": BASELINE}
    attacks |= {name: attack_spec(config, name) for suite in suites.values() for name in suite}
    for name, entry in json.loads(args.extra).items():
        method_defaults = config["attack_methods"][entry["method"]]
        attacks[name] = deep_merge(method_defaults, entry)
    rows = []
    for path in args.models:
        model, _ = load_model(path, device)
        clean = evaluate_clustering(
            embed(model, split["images"], evaluation["batch_size"], device).numpy(),
            split["labels"].numpy(), evaluation["kmeans_seeds"], evaluation["kmeans_n_init"],
            backend=evaluation["kmeans_backend"],
        )  # fmt: skip
        defense = path.split("/")[-3]
        rows.append({"model": defense, "attack": "clean", "nmi": clean["nmi"], "ari": clean["ari"]})
        for name, params in attacks.items():
            row = measure(model, split, params, args.eps, seed, evaluation, device)
            rows.append({"model": defense, "attack": name, **row})
            print(json.dumps(rows[-1]), flush=True)
    frame = pd.DataFrame(rows)
    base = frame[frame["attack"] == "centroid_10"].set_index("model")
    attacked = frame[frame["attack"] != "clean"].copy()
    attacked["time_ratio"] = attacked["seconds"] / attacked["model"].map(base["seconds"])
    attacked["pass_ratio"] = attacked["gradient_passes"] / attacked["model"].map(
        base["gradient_passes"]
    )
    print(attacked.round(4).to_string(index=False))
    worst = {}
    for threat, names in threat_models(suites).items():
        in_suite = attacked[attacked["attack"].isin(names)]
        worst[threat] = in_suite.loc[in_suite.groupby("model")["nmi"].idxmin()]
        print(f"\nworst case, {threat} ({', '.join(names)}):")
        print(worst[threat][["model", "attack", "nmi", "ari"]].round(4).to_string(index=False))
    suite_cost = attacked[attacked["attack"].isin(sum(suites.values(), []))]
    cost = suite_cost.groupby("model")["time_ratio"].sum().mean()
    baseline = attacked[attacked["attack"] == "centroid_10"].set_index("model")["nmi"]
    gains = {
        name.replace("-", "_"): baseline - frame.set_index("model")["nmi"]
        for name, frame in worst.items()
    }
    print(
        f"RESULT eps={args.eps:g} suite_cost_vs_centroid10={cost:.1f}x "
        + " ".join(
            f"{name}_nmi_below_centroid10_min={gain.min():.4f}_max={gain.max():.4f}"
            for name, gain in gains.items()
        )
    )


if __name__ == "__main__":
    main()
