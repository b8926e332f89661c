"""The metrics record of one model on one image set (clean or adversarial): clustering (NMI,
AMI, ARI, F1) and retrieval (R@K, MAP@R) with its ids, config, config hash and package
versions. Every job that evaluates (attack, members, transfer) writes its records through
`record`, and one JSON of them per job (`write_records`)."""

import logging
import time
from pathlib import Path

import torch
from torch import nn

from robdml.adversarial import transfer_source_name
from robdml.embedding import embed
from robdml.io import package_versions, spec_hash, write_json
from robdml.metrics import evaluate_clustering, split_retrieval_metrics


def record(
    model: nn.Module,
    model_spec: dict,
    images: torch.Tensor,
    split: dict,
    ids: dict,
    spec: dict,
    device: torch.device,
    attack: dict | None = None,
) -> dict:
    """Metrics of `model` on `images` (the test split's images or an attack's version of them;
    labels and meta from `split`). `attack`: what robdml.adversarial.attack_record keeps."""
    labels = split["labels"]
    started = time.perf_counter()
    embeddings = embed(model, images, spec["batch_size"], device)
    embedded = time.perf_counter()
    metrics = evaluate_clustering(
        embeddings.to(device), labels.numpy(), spec["kmeans_seeds"], spec["kmeans_n_init"],
        spec["chance_repeats"], spec["kmeans_backend"],
    )  # fmt: skip
    clustered = time.perf_counter()
    metrics |= split_retrieval_metrics(embeddings, labels, split["meta"], tuple(spec["recall_ks"]))
    finished = time.perf_counter()
    logging.info("%s: %s", ids, {key: round(value, 4) for key, value in metrics.items()})
    config = {"model": model_spec, "attack": attack or {}, "evaluation": spec}
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


def ids_of(
    model: dict, attack: str, eps_255: float, threat: str, source: str = "",
    source_model: dict | None = None,
) -> dict:  # fmt: skip
    """Identifiers of one record: the evaluated `model` ({dataset, backbone, defense, seed}),
    the attack and eps (clean: 'clean', 0), the threat (clean, whitebox, transfer, member,
    member_attack, breaking) and the model the examples were crafted on when it is another
    one: `source` names it (a member, 'member1'; a transfer source, 'vanilla/seed1'), and a
    transfer source's ids ({defense, seed}) are kept as fields of their own."""
    ids = {**model, "attack": attack, "eps_255": float(eps_255), "threat": threat}
    if source_model is not None:
        source = transfer_source_name(source_model)
        ids |= {"source_defense": source_model["defense"], "source_seed": source_model["seed"]}
    return ids | {"source": source}


def write_records(path: str | Path, records: list[dict], seconds: dict) -> None:
    """One job's records and where its time went (`seconds`: work per phase, for
    benchmarks/dag.py's start-up share)."""
    write_json(path, {"records": records, "seconds": seconds})
