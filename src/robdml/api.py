"""robdml as a library: how robust is any embedding model under clustering-based inference,
without Snakemake.

    import robdml
    result = robdml.evaluate(model, images, labels, eps_255=(8,), mean=MEAN, std=STD)
    print(result.to_markdown())

`model` is any `torch.nn.Module` mapping images to embeddings (normalisation inside it, or
given as `mean` / `std`); `images` a tensor (uint8, or float in [0, 1]) with `labels`, an
`ImageFolder`-style directory or a `DataLoader` (robdml.test_set). The run is the workflow's
attack job (robdml.robustness.attack_job: the same crafting, 8-bit delivery, k-means seeds and
metrics), its worst case (robdml.worst_case), check (a) (robdml.sanity) and card
(robdml.cards), with a versioned suite (robdml.suites) that the card names.
"""

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from robdml.attacks.runner import attack_each_eps
from robdml.cards import card_markdown, model_card
from robdml.fast_path import FastPath, configure_fast_path
from robdml.grid import records_frame
from robdml.io import spec_hash
from robdml.job_progress import JobProgress
from robdml.models.external import CHECK_IMAGES, SAME_EMBEDDING, ExternalModel, check_external
from robdml.provenance import run_provenance
from robdml.robustness import attack_job
from robdml.runtime import setup
from robdml.sanity import sanity_table
from robdml.specs import crafting_spec
from robdml.suites import DEFAULT_SUITE, load_suite
from robdml.test_set import as_test_set
from robdml.threat_model import ThreatModel

# `threat_model` arguments: a suite key, or both
THREAT_MODELS = {model.suite: (model,) for model in ThreatModel} | {"both": tuple(ThreatModel)}


@dataclass
class Evaluation:
    """What `evaluate` measured: the robustness card (the workflow's, robdml.cards) and every
    evaluated set's metrics (`records`, as the workflow's metrics JSONs hold them)."""

    card: dict
    records: list[dict]

    @property
    def long(self) -> pd.DataFrame:
        """One row per evaluated set: ids (attack, eps, threat) and metrics."""
        return records_frame(self.records)

    def worst_case(self, threat_model: str, metric: str = "nmi", eps_255: float = 8) -> dict:
        """{'value', 'attack'} of `metric`'s worst case under `threat_model` ('label-free' or
        'label-aware') at `eps_255`."""
        for row in self.card["results"]:
            if row["threat_model"] == threat_model and row["eps_255"] == eps_255:
                return row[metric]
        raise KeyError(f"no {threat_model} worst case at eps {eps_255:g} in this evaluation")

    def to_json(self) -> str:
        return json.dumps(self.card, indent=1)

    def to_markdown(self) -> str:
        return card_markdown(self.card)


def evaluate(
    model: nn.Module,
    images,
    labels=None,
    *,
    eps_255=(8,),
    threat_model: str = "both",
    suite: str = DEFAULT_SUITE,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    image_size: int | None = None,
    channels: int = 3,
    device: str | torch.device | None = None,
    threads: int | None = None,
    name: str = "model",
) -> Evaluation:
    """Clean and adversarial metrics of `model` on the test set, per eps (in 1/255 of the
    pixel range) and threat model: the worst case of NMI, ARI and R@1 over the suite's attacks
    (and the attack behind each), check (a) of the sanity checks, and the suite's name.
    `threads`: CPU threads (None: torch's current setting); the workflow's jobs use one each."""
    if threat_model not in THREAT_MODELS:
        raise ValueError(f"threat_model {threat_model!r}: one of {', '.join(THREAT_MODELS)}")
    loaded = load_suite(suite)
    config = suite_config(loaded, eps_255)
    if threat_model == ThreatModel.LABEL_FREE.suite:
        config["attack_suites"] = {**config["attack_suites"], ThreatModel.LABEL_AWARE.suite: []}
    split = as_test_set(images, labels, image_size, channels)
    device, fast_path = prepare(loaded, device, threads)
    wrapped, model_spec = contract(model, mean, std, split, name, device)
    suites = config["attack_suites"]
    job = crafting_spec(config, list(dict.fromkeys(sum(suites.values(), []))), clean=True)
    ids = {"dataset": "test set", "backbone": "external", "defense": name, "seed": 0}
    with tempfile.TemporaryDirectory() as scratch:
        progress = JobProgress(Path(scratch) / "progress", {"job": job, "api": model_spec})
        records = attack_job(
            lambda member: (copy.deepcopy(wrapped), model_spec), split, job,
            config["evaluation"], ids, Path(scratch) / "sets", device, fast_path, progress,
        )  # fmt: skip
    long = records_frame(records)
    sanity = sanity_table(long, config["sanity"], suites, config["report"]["main_eps_255"])
    provenance = run_provenance(spec_hash(config))
    card = model_card(long, sanity, suites, ids, provenance) | {"suite": suite}
    wanted = {"clean", *THREAT_MODELS[threat_model]}
    card["results"] = [row for row in card["results"] if row["threat_model"] in wanted]
    card["sanity"] = [c for c in card["sanity"] if c["threat_model"] in wanted]
    return Evaluation(card, records)


def attack(
    model: nn.Module,
    images,
    labels=None,
    *,
    attack: str = "cluster_mi",
    eps_255: float = 8,
    suite: str = DEFAULT_SUITE,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    image_size: int | None = None,
    channels: int = 3,
    device: str | torch.device | None = None,
    threads: int | None = None,
) -> torch.Tensor:
    """The adversarial test set (uint8 [N, C, H, W], as delivered) of one of the suite's
    attacks against `model` at `eps_255`, crafted as `evaluate` crafts it."""
    loaded = load_suite(suite)
    config = suite_config(loaded, [eps_255])
    if attack not in config["attacks"]:
        known = ", ".join(config["attacks"])
        raise ValueError(f"attack {attack!r} is not in suite {suite}: one of {known}")
    split = as_test_set(images, labels, image_size, channels)
    device, fast_path = prepare(loaded, device, threads)
    wrapped, _ = contract(model, mean, std, split, "model", device)
    (entry,) = crafting_spec(config, [attack], clean=False)["attacks"]
    spec = entry["spec"]
    (result,) = attack_each_eps(
        copy.deepcopy(wrapped), split["images"], split["labels"], spec, [float(eps_255)],
        spec["attacker_seed"], spec["batch_size"], device, fast_path,
    )  # fmt: skip
    return result["images"]


def suite_config(suite: dict, eps_255) -> dict:
    """The config sections robdml.jobs and robdml.sanity read, for one suite and eps sweep."""
    eps = [int(e) if float(e).is_integer() else float(e) for e in eps_255]
    return {
        "attack_suites": copy.deepcopy(suite["attack_suites"]),
        "attacks": copy.deepcopy(suite["attacks"]),
        "evaluation": {**suite["evaluation"], "eps_255": eps},
        "sanity": {**suite["sanity"], "stronger": {}},
        "report": {"main_eps_255": eps[0]},
    }


def prepare(suite: dict, device, threads: int | None) -> tuple[torch.device, FastPath]:
    """The device (None: cuda where there is one) set up as an attack job sets it up (threads,
    the attacker's seed) and the suite's fast path for it."""
    name = torch.device(device).type if device else "cuda" if torch.cuda.is_available() else "cpu"
    seed = suite["evaluation"]["attack_kmeans_seed"]
    device = setup(threads or torch.get_num_threads(), name, seed)
    settings = suite["fast_path"]["gpu" if device.type == "cuda" else "cpu"]
    return device, configure_fast_path(device, settings)


def contract(
    model: nn.Module, mean, std, split: dict, name: str, device: torch.device
) -> tuple[nn.Module, dict]:
    """`model` in the package's model contract (images in [0, 1], normalised inside, unit
    embeddings out), checked on the first test images as an external model is (one line per
    problem: robdml.models.external.ExternalModelError). Without `mean` and `std`, a model
    whose embeddings are already unit vectors (one the workflow trained) runs as it is, so it
    gives the workflow's numbers; any other is wrapped (robdml.models.external.ExternalModel)."""
    channels = split["images"].shape[1]
    given = mean is not None or std is not None
    mean = [0.0] * channels if mean is None else list(map(float, mean))
    std = [1.0] * channels if std is None else list(map(float, std))
    wrapped = ExternalModel(model, mean, std).eval().to(device)
    images = split["images"][:CHECK_IMAGES].to(device).float() / 255
    check_external(name, wrapped, images)
    spec = {"external": name, "mean": mean, "std": std}
    if not given:
        with torch.no_grad():
            raw = model(images)
        if raw.dim() == 2 and raw.dtype == torch.float32 and unit_norm(raw):
            return model.eval(), spec
    return wrapped, spec


def unit_norm(embeddings: torch.Tensor) -> bool:
    return bool(((embeddings.norm(dim=1) - 1).abs() < SAME_EMBEDDING).all())
