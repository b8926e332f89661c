"""Rule evaluate: clustering (NMI, AMI, ARI, F1) and retrieval (R@K, MAP@R) metrics of one
model on image sets (the clean test set, or adversarial ones); one JSON per image set with its
ids, config, config hash and package versions."""

import argparse
import json
import logging
import time

import torch

from robdml.data.prepared import load_split
from robdml.embedding import embed
from robdml.io import package_versions, spec_hash, write_json
from robdml.metrics import evaluate_clustering, split_retrieval_metrics
from robdml.models import load_model
from robdml.runtime import setup

ATTACK_RECORD = ("attack", "eps_255", "source_model_spec_hash", "objective_clean",
                 "objective_adversarial", "agreement_nmi", "chosen")  # fmt: skip


def load_images(path: str) -> tuple[torch.Tensor, torch.Tensor, dict, dict]:
    """(images, labels, split meta, attack record or {}) from a split or adversarial file."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("format") == "robdml-adversarial/1":
        record = {key: payload[key] for key in ATTACK_RECORD if key in payload}
        record["perturbed_fraction"] = payload["perturbed"].float().mean().item()
        return payload["images"], payload["labels"], payload["meta"], record
    split = load_split(path)
    return split["images"], split["labels"], split["meta"], {}


def evaluate(model, model_spec: dict, images_path: str, ids: dict, spec: dict, device) -> dict:
    """The metrics record of `model` on the images in `images_path`."""
    images, labels, meta, attack = load_images(images_path)
    started = time.perf_counter()
    embeddings = embed(model, images, spec["batch_size"], device)
    embedded = time.perf_counter()
    metrics = evaluate_clustering(
        embeddings.to(device), labels.numpy(), spec["kmeans_seeds"], spec["kmeans_n_init"],
        spec["chance_repeats"], spec["kmeans_backend"],
    )  # fmt: skip
    clustered = time.perf_counter()
    metrics |= split_retrieval_metrics(embeddings, labels, meta, tuple(spec["recall_ks"]))
    finished = time.perf_counter()
    logging.info("%s: %s", ids, {key: round(value, 4) for key, value in metrics.items()})
    config = {"model": model_spec, "attack": attack, "evaluation": spec}
    return {
        "ids": ids,
        "metrics": metrics,
        "n_test_images": len(labels),
        "n_test_classes": int(labels.unique().numel()),
        "config": config,
        "config_hash": spec_hash(config),
        "versions": package_versions(),
        "seconds": {
            "embed": embedded - started,
            "cluster": clustered - embedded,
            "retrieval": finished - clustered,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="evaluation spec (robdml.config)")
    parser.add_argument("--ids", required=True, help="JSON list: identifiers per image set")
    parser.add_argument("--model", required=True, help="trained model file")
    parser.add_argument("--images", nargs="+", required=True, help="test split / adversarial")
    parser.add_argument("--out", nargs="+", required=True, help="outputs: one JSON per --images")
    parser.add_argument("--member", type=int, help="use this ensemble member alone")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    spec, ids = json.loads(args.spec), json.loads(args.ids)
    if not len(args.images) == len(args.out) == len(ids):
        parser.error("give one --out and one ids entry per --images")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    device = setup(args.threads, args.device, spec["kmeans_seeds"][0])
    model, model_spec = load_model(args.model, device, args.member)
    for images_path, out, image_ids in zip(args.images, args.out, ids, strict=True):
        write_json(out, evaluate(model, model_spec, images_path, image_ids, spec, device))


if __name__ == "__main__":
    main()
