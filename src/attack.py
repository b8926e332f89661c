"""Rule attack: adversarial versions of the whole test set against one trained model, one
output file per eps of the sweep."""

import argparse
import json
import logging
import time

from robdml.attacks.runner import attack_test_set
from robdml.data.prepared import load_split
from robdml.fast_path import configure_fast_path
from robdml.io import spec_hash, torch_save
from robdml.models import load_model
from robdml.runtime import setup

ADVERSARIAL_FORMAT = "robdml-adversarial/1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="attack spec (robdml.config.attack_spec)")
    parser.add_argument("--eps", type=float, nargs="+", required=True, help="budgets, in 1/255")
    parser.add_argument("--model", required=True, help="trained model file")
    parser.add_argument("--data", required=True, help="prepared test split")
    parser.add_argument("--out", nargs="+", required=True, help="outputs: one file per --eps")
    parser.add_argument("--member", type=int, help="use this ensemble member alone")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--fast", type=json.loads, help="GPU fast path settings, JSON (config `gpu`; cuda only)"
    )
    args = parser.parse_args()
    if len(args.out) != len(args.eps):
        parser.error("give exactly one --out per --eps")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec = json.loads(args.spec)
    device = setup(args.threads, args.device, spec["attacker_seed"])
    fast_path = configure_fast_path(device, args.fast)
    model, model_spec = load_model(args.model, device, args.member)
    split = load_split(args.data)
    started = time.perf_counter()
    results = attack_test_set(
        model, split["images"], split["labels"], spec, args.eps,
        spec["attacker_seed"], spec["batch_size"], device, fast_path,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    for result, path in zip(results, args.out, strict=True):
        logging.info(
            "eps %g/255: objective %.4f -> %.4f",
            result["eps_255"], result["objective_clean"], result["objective_adversarial"],
        )  # fmt: skip
        payload = {
            "format": ADVERSARIAL_FORMAT,
            **result,
            "labels": split["labels"],
            "meta": split["meta"],
            "attack": spec,
            "source_model_spec_hash": spec_hash(model_spec),
            "seconds_all_eps": seconds,
        }
        torch_save(path, payload)
    logging.info("%d eps in %.1f s", len(results), seconds)


if __name__ == "__main__":
    main()
