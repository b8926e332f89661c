"""The adversarial-set file: an attack's version of a whole test set, written by attack jobs
and read by transfer evaluation and the t-SNE figure. Its one home: every reader checks it.
Torch is imported only to read one: the Snakefile's planning uses `set_name`."""

from pathlib import Path

from robdml.io import UnreadableFileError, torch_load, torch_save

ADVERSARIAL_FORMAT = "robdml-adversarial/1"
# what a metrics record says about the attack behind an adversarial set
ATTACK_RECORD = ("attack", "eps_255", "source_model_spec_hash", "objective_clean",
                 "objective_adversarial", "agreement_nmi", "chosen")  # fmt: skip
REQUIRED = ("images", "labels", "meta", "perturbed", "attack", "eps_255")


class AdversarialSetError(UnreadableFileError):
    """A file that is not a complete adversarial set."""


def transfer_source_name(source_model: dict) -> str:
    """How records and tables name the model ({defense, seed}) a transferred set was crafted
    on: 'vanilla/seed1'."""
    return f"{source_model['defense']}/seed{source_model['seed']}"


def set_name(attack: str, eps_255: float) -> str:
    """Path of one adversarial set inside its attack job's directory (eps in 1/255: 8, 0.5)."""
    return f"{attack}/eps{eps_255:g}.pt"


def save_adversarial_set(path: str | Path, result: dict, split: dict, source: dict) -> None:
    """Write one attack result (robdml.attacks.runner) atomically, with the test split's labels
    and meta and `source` (the attack spec, the attacked model's spec hash, timings)."""
    torch_save(
        path,
        {
            "format": ADVERSARIAL_FORMAT,
            **result,
            "labels": split["labels"],
            "meta": split["meta"],
            **source,
        },
    )


def load_adversarial_set(path: str | Path) -> dict:
    """The payload of an adversarial-set file, checked (one line naming what is wrong)."""
    sets_dir = Path(path).parent.parent  # the attack job's output (see set_name)
    payload = torch_load(
        path, "adversarial set",
        f"rule attack writes it; rerun its job: snakemake --forcerun {sets_dir}",
        (ADVERSARIAL_FORMAT,), AdversarialSetError,
    )  # fmt: skip
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise AdversarialSetError(f"{path}: adversarial set without {', '.join(missing)}")
    if len(payload["images"]) != len(payload["labels"]):
        raise AdversarialSetError(
            f"{path}: {len(payload['images'])} images for {len(payload['labels'])} labels"
        )
    return payload


def attack_record(result: dict) -> dict:
    """What a metrics record keeps of an attack result or adversarial set."""
    record = {key: result[key] for key in ATTACK_RECORD if key in result}
    record["perturbed_fraction"] = result["perturbed"].float().mean().item()
    return record
