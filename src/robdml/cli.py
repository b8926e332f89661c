"""The `robdml` command: `robdml.evaluate` and `robdml.attack` on a model given as a factory
file and a weights file (the workflow's external-model entry: robdml.models.external) and a
directory of test images, one folder per class. Every bad input stops with one line.

    robdml evaluate --model path/to/factory.py:build --weights w.pt --images DIR --eps 8 \\
        --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 --out card.json
    robdml attack --model ... --images DIR --attack cluster_mi --eps 8 --out adversarial.pt
"""

import argparse
import sys
from pathlib import Path

from robdml.factory import split_factory
from robdml.io import UnreadableFileError, atomic_write, torch_save
from robdml.models.external import ExternalModelError, build_external
from robdml.suites import DEFAULT_SUITE, FROZEN, SUITES, UnknownSuiteError
from robdml.test_set import TestSetError
from robdml.threat_model import ThreatModel

ADVERSARIAL_FILE = "robdml-cli-adversarial/1"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="robdml", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="the robustness card of a model")
    attack = commands.add_parser("attack", help="one attack's adversarial test set")
    for command in (evaluate, attack):
        command.add_argument("--model", required=True, help="path/to/factory.py:function")
        command.add_argument("--weights", help="a state dict for the factory's model")
        command.add_argument("--images", required=True, help="directory: one folder per class")
        command.add_argument("--image-size", type=int, help="resize and centre-crop to this")
        command.add_argument("--channels", type=int, default=3, help="3: RGB, 1: grey")
        command.add_argument("--mean", type=float, nargs="+", help="per-channel input mean")
        command.add_argument("--std", type=float, nargs="+", help="per-channel input std")
        command.add_argument("--suite", default=DEFAULT_SUITE, choices=[*SUITES, *FROZEN])
        command.add_argument("--device", help="cpu or cuda (default: cuda where there is one)")
        command.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
        command.add_argument("--out", required=True, help="output file")
    evaluate.add_argument("--eps", type=float, nargs="+", default=[8.0], help="in 1/255")
    evaluate.add_argument(
        "--threat-model", default="both", choices=[*(model.suite for model in ThreatModel), "both"]
    )
    evaluate.add_argument("--markdown", help="also write the card as Markdown here")
    attack.add_argument("--attack", default="cluster_mi", help="an attack of the suite")
    attack.add_argument("--eps", type=float, default=8.0, help="in 1/255")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
    except (ExternalModelError, TestSetError, UnknownSuiteError, UnreadableFileError) as error:
        print(f"robdml {args.command}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # the API's own argument checks
        print(f"robdml {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> None:
    import robdml

    entry = {"factory": args.model, "weights": args.weights, "mean": [0.0], "std": [1.0]}
    module = build_external("model", entry).module
    common = {
        "mean": args.mean, "std": args.std, "suite": args.suite, "image_size": args.image_size,
        "channels": args.channels, "device": args.device, "threads": args.threads,
    }  # fmt: skip
    if args.command == "evaluate":
        result = robdml.evaluate(
            module, args.images, eps_255=args.eps, threat_model=args.threat_model,
            name=Path(split_factory(args.model)[0]).stem, **common,
        )  # fmt: skip
        atomic_write(args.out, lambda tmp: tmp.write_text(result.to_json() + "\n"))
        if args.markdown:
            atomic_write(args.markdown, lambda tmp: tmp.write_text(result.to_markdown()))
        print(result.to_markdown())
    else:
        images = robdml.attack(module, args.images, attack=args.attack, eps_255=args.eps, **common)
        saved = {"format": ADVERSARIAL_FILE, "images": images, "attack": args.attack,
                 "eps_255": args.eps, "suite": args.suite}  # fmt: skip
        torch_save(args.out, saved)
        print(f"robdml attack: {len(images)} images, {args.attack} at {args.eps:g}/255: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
