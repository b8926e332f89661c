"""Adding a defense or an attack touches exactly the places README "Adding a defense, an attack
or a dataset" lists: a throwaway one of each, made in a copy of the repository with only those
edits, validates, is costed, trains and attacks."""

import shutil
import subprocess
import sys
import textwrap

from conftest import REPO

DEFENSE_MODULE = '''
"""Throwaway: Proxy Anchor loss on uniformly noised images."""

import torch

from robdml.defenses.base import Defense
from robdml.threat_model import radius


class NoiseTraining(Defense):
    def loss(self, step, images, labels, mask):
        ball = radius(self.params["noise_eps_255"])
        noise = (torch.rand(images.shape, generator=step.generator) * 2 - 1) * ball
        noisy = (images + noise).clamp(0, 1)
        return step.pal_losses[0](step.members[0](noisy), labels)
'''

ATTACK_MODULE = '''
"""Throwaway: push each embedding away from its clean position."""

import torch.nn.functional as F

from robdml.attacks.base import Attack


class AwayAttack(Attack):
    def objective(self, embeddings, context):
        return -F.cosine_similarity(embeddings, context.samples["clean"], dim=1)
'''

DEFENSE_SCHEMA = """\
  defense_noise_at:
    type: object
    additionalProperties: false
    required: [noise_eps_255]
    properties:
      method: {const: noise_at}
      noise_eps_255: {type: number, minimum: 0, maximum: 255}
"""

ATTACK_SCHEMA = """\
  attack_away:
    type: object
    additionalProperties: false
    required: [steps, step_fraction, schedule, restarts, perturbed_fraction]
    properties:
      method: {type: string}
      steps: {type: integer, minimum: 1}
      step_fraction: {type: number, exclusiveMinimum: 0}
      schedule: {enum: [sign, apgd]}
      restarts: {type: integer, minimum: 1}
      perturbed_fraction: {type: number, exclusiveMinimum: 0, maximum: 1}
"""

SCRIPT = """
import sys, torch
from robdml import resources
from robdml.attacks.runner import attack_test_set
from robdml.config import load_schema, read_config, validate_config
from robdml.specs import defense_spec
from robdml.data.datasets import InMemoryImages
from robdml.models import load_model
from robdml.training import train

config = read_config("config/demo.yaml")  # the quick demo, with the new ones selected
config["run"]["defenses"].append("noise_at")
config["defenses"]["noise_at"] = {"method": "noise_at"}
config["attacks"]["away"] = {"method": "away"}
config["attack_suites"]["label_free"].append("away")
config = validate_config(config, load_schema(), "demo.yaml + the new ones")
assert resources.train_runtime(config, "glyphs", "cnn", "noise_at") > 0
assert resources.crafting_work(config, "glyphs", "noise_at", "away", 1).passes > 0
spec = {
    "dataset": {"source": "glyphs", "image_size": 8, "channels": 1, "mean": [0.5],
                "std": [0.25], "train_transform": "none"},
    "backbone": {"arch": "small_cnn", "embedding_dim": 8, "widths": [4, 8], "weights": None},
    "training": {**config["recipes"]["glyphs"], "epochs": 1, "batch_size": 8, "num_workers": 0},
    "defense": defense_spec(config, "glyphs", "noise_at"),
    "seed": 0,
}
images = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
labels = torch.arange(4).repeat_interleave(8)
train(spec, InMemoryImages(images, labels, None), "model.pt", "model.ckpt", "cpu")
model, _ = load_model("model.pt")
params = config["attacks"]["away"]
(result,) = attack_test_set(model, images, labels, params, [8], 0, 16, torch.device("cpu"))
assert result["objective_adversarial"] > result["objective_clean"], result
print("trained", spec["defense"]["method"], "attacked", params["method"])
"""


def insert_after(path, anchor: str, text: str) -> None:
    """One edit a contributor makes: `text` inserted after the first line containing `anchor`."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if anchor in line) + 1
    path.write_text("".join(lines[:at]) + text + "".join(lines[at:]))


def test_a_new_defense_and_attack_need_only_the_listed_places(tmp_path):
    for folder in ("src", "workflow", "config"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.pyc"))
    src = tmp_path / "src/robdml"
    # a defense: its module, a registry line, its cost, its schema entry, its defaults
    (src / "defenses/noise_at.py").write_text(textwrap.dedent(DEFENSE_MODULE).lstrip())
    insert_after(src / "defenses/__init__.py", "from robdml.defenses.mixup",
                 "from robdml.defenses.noise_at import NoiseTraining\n")  # fmt: skip
    insert_after(
        src / "defenses/__init__.py", '"vanilla": Vanilla,', '    "noise_at": NoiseTraining,\n'
    )
    insert_after(src / "resources.py", "TRAIN_PASSES: dict", '    "noise_at": lambda p, c: 1,\n')
    schema = tmp_path / "workflow/schemas/config.schema.yaml"
    insert_after(
        schema, "    description: what the adversarial examples of each member", DEFENSE_SCHEMA
    )
    insert_after(
        tmp_path / "config/config.yaml", "defense_methods:", "  noise_at: {noise_eps_255: 8}\n"
    )
    # an attack: its module, a registry line, its schema entry, its defaults
    (src / "attacks/away.py").write_text(textwrap.dedent(ATTACK_MODULE).lstrip())
    insert_after(src / "attacks/__init__.py", "from robdml.attacks.base",
                 "from robdml.attacks.away import AwayAttack\n")  # fmt: skip
    insert_after(
        src / "attacks/__init__.py", '"centroid": CentroidAttack,', '    "away": AwayAttack,\n'
    )
    insert_after(
        schema,
        "      scale: {type: number, exclusiveMinimum: 0, description: softmax",
        ATTACK_SCHEMA,
    )
    insert_after(tmp_path / "config/config.yaml", "attack_methods:",
                 "  away: {steps: 5, step_fraction: 0.25, schedule: sign, restarts: 1,"
                 " perturbed_fraction: 1.0}\n")  # fmt: skip

    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "trained noise_at attacked away"
