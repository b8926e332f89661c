"""GPU check: what the GPU fast path (robdml.fast_path) buys on this GPU, and what a job costs.

ResNet-50 at 224 px with a random init on synthetic data (random images and labels: no data
set, no weights), the recipe and attacks of config/config.yaml, each measurement with the fast
path and with the plain path (fp32 with torch's defaults: TF32 convolutions) in one process:

- train: clean training steps (vanilla, Proxy Anchor loss) through robdml.training.train_step,
  images/s at the recipe's batch size;
- pgd_at: PGD adversarial training steps (the recipe's training attack: 10 PGD steps), images/s;
- attack: the attack runner (robdml.attacks.runner) with `mi` cut to 10 APGD steps
  (clean embedding, the attacker's k-means, objective values and 8-bit delivery included),
  images/s on sets of 4 evaluation batches;
- eval_cub, eval_inshop: what robdml.evaluation computes from embeddings (k-means metrics with the
  `torch` backend over the config's k-means seeds, then retrieval metrics) on synthetic 512-d
  embeddings of CUB's test size (5,924 images, 100 classes) and In-Shop's (14,218, 3,985):
  seconds, the k-means on the GPU (fast) and on the CPU (plain); fp32 either way;
- the peak GPU memory (allocated, GB = 10^9 bytes) of each.

Throughputs: warm-up calls (cuDNN's autotuner tries its algorithms there), then timed calls
until a count or a time box; sized for about 3 to 4 minutes on an H100 (an estimate from
1,000-3,000 training img/s, not a measurement), well inside 8. On a CPU (--smoke) the fast
path is off, so both columns run the plain path. The last line sums it up: fast_vs_plain is
the geometric mean of the fast/plain throughput ratios of train, pgd_at and attack; the other
values are the fast path's (peak_gb: its largest).

On a GPU it also writes the measured figures where the cost model (robdml.resources, README
"Resources") reads them, as a config overlay (default results/gpu_check/measured_resources.yaml):
`resources.throughput_img_per_s.cuda.<arch>`, the fast path's clean training img/s (one
forward+backward per image, the cost model's unit; jobs run the fast path by default) scaled to
`throughput_image_size` as the cost model scales it, and `resources.expected.cuda.utilisation`,
the FLOP/s that training achieved (img/s x the FLOPs robdml.flops counts for one forward, over
`pass_cost.forward`) over the config's `peak_tflops`. Pass it after the other config files:

    python benchmarks/gpu_hours.py --configfile results/gpu_check/measured_resources.yaml
    snakemake ... --configfile config/cub_quick.yaml results/gpu_check/measured_resources.yaml

Only the measured arch (resnet50) changes; the other throughputs stay assumptions. --smoke
writes nothing (its sizes are not a job's).

    bash benchmarks/gpu_check.sh            # a GPU node: offline, installs nothing
    bash benchmarks/gpu_check.sh --smoke    # anywhere, seconds: resnet18 at 32 px, tiny sets

Imports the library from src/ (the wrapper sets PYTHONPATH): needs torch, torchvision, numpy,
scipy, scikit-learn, PyYAML, tqdm and pytorch-metric-learning (docs/performance.md "GPU check").
"""

import argparse
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from robdml.attacks.runner import attack_test_set
from robdml.defenses import StepContext, build_defense
from robdml.fast_path import GPU_DEFAULTS, FastPath, configure_fast_path
from robdml.flops import forward_flops
from robdml.losses import proxy_anchor_loss
from robdml.metrics import evaluate_clustering, retrieval_metrics
from robdml.models import build_members, member_generator
from robdml.runtime import generator, setup
from robdml.training import make_optimizer, set_epoch, train_step

REPO = Path(__file__).resolve().parents[1]
OVERLAY = REPO / "results/gpu_check/measured_resources.yaml"
EMBEDDING_DIM = 512
TRAIN_CLASSES = 100  # CUB's training classes


@dataclass(frozen=True)
class Sizes:
    """What one run measures."""

    arch: str
    image_size: int
    batch_size: int  # training
    pgd_steps: int  # PGD-AT's training attack
    attack_batch_size: int  # the attack runner's; its sets hold 4 batches
    attack_steps: int
    warmup: int  # untimed training steps
    iterations: int  # timed training steps at most
    eval_sizes: dict  # name -> (images, classes) of the test sets whose evaluation is timed


def sizes(smoke: bool, config: dict) -> Sizes:
    """The paper's ResNet-50 jobs at the config's batch sizes, or a tiny smoke run."""
    if smoke:
        return Sizes("resnet18", 32, 8, 2, 4, 2, 1, 2, {"cub": (300, 10), "inshop": (400, 100)})
    return Sizes(
        arch="resnet50",
        image_size=224,
        batch_size=config["training"]["batch_size"],
        pgd_steps=config["training"]["attack"]["steps"],
        attack_batch_size=config["evaluation"]["batch_size"],
        attack_steps=10,
        warmup=3,
        iterations=20,
        eval_sizes={"cub": (5924, 100), "inshop": (14218, 3985)},
    )


def measure(run: Callable, warmup: int, iterations: int, time_box: float, device) -> tuple:
    """(seconds per call of `run`, peak GPU memory in GB): `warmup` untimed calls, then timed
    calls until `iterations` or until `time_box` seconds have passed (at least one)."""
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        run()
    if on_gpu:
        torch.cuda.synchronize(device)
    started, calls = time.perf_counter(), 0
    while calls < iterations and (calls == 0 or time.perf_counter() - started < time_box):
        run()
        calls += 1
    if on_gpu:
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - started) / calls
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if on_gpu else 0.0
    return seconds, peak


def release(device) -> None:
    """Free what the last measurement held, so that the next one's peak is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class Check:
    """The synthetic jobs of one run: its sizes, the config's recipe and attacks."""

    def __init__(self, sizes: Sizes, config: dict, device: torch.device):
        self.sizes, self.config, self.device = sizes, config, device
        self.recipe = config["training"]
        self.spec = {
            "dataset": {**config["datasets"]["cub200"], "image_size": sizes.image_size},
            "backbone": {**config["backbones"]["resnet50"], "arch": sizes.arch, "weights": None},
            "seed": 0,
        }
        self.random = torch.Generator().manual_seed(0)

    def images(self, n: int) -> torch.Tensor:
        size = self.sizes.image_size
        return torch.randint(0, 256, (n, 3, size, size), generator=self.random, dtype=torch.uint8)

    def training(self, defense_params: dict, fast_path: FastPath) -> Callable:
        """One training step of a fresh model on one synthetic batch, as the loader delivers it
        (pinned on the fast path), past the warm-up epochs (the trunk trains)."""
        recipe, batch_size = self.recipe, self.sizes.batch_size
        defense = build_defense(defense_params)
        members = [fast_path.prepare_model(m) for m in build_members(self.spec, defense.n_members)]
        pal_losses = [
            proxy_anchor_loss(
                TRAIN_CLASSES, EMBEDDING_DIM, recipe, member_generator(0, i, "proxies")
            ).to(self.device)
            for i in range(defense.n_members)
        ]
        optimizer = make_optimizer(members, pal_losses, recipe)
        set_epoch(members, optimizer, recipe, recipe["warmup_epochs"])
        step = StepContext(members, pal_losses, generator(0, 0), epochs=recipe["epochs"])
        images = self.images(batch_size).float() / 255
        labels = torch.randint(0, TRAIN_CLASSES, (batch_size,), generator=self.random)
        if fast_path.loader_options(recipe["num_workers"])["pin_memory"]:
            images, labels = images.pin_memory(), labels.pin_memory()
        mask = defense.member_masks(labels, 0)
        clip = recipe["grad_clip_value"]

        def run():
            train_step(defense, step, optimizer, images, labels, mask, clip, fast_path).item()

        return run

    def attack(self, fast_path: FastPath) -> Callable:
        """One run of the attack runner (`mi` cut to `attack_steps` APGD steps, the main eps)
        against a fresh model on a synthetic uint8 set of 4 batches, 4 images per class."""
        evaluation = self.config["evaluation"]
        n = 4 * self.sizes.attack_batch_size
        images, labels = self.images(n), torch.arange(n) // 4
        steps = self.sizes.attack_steps
        params = {"method": "mi", **self.config["attack_methods"]["mi"]}
        params |= {"steps": steps, "refit_every": steps}
        model = build_members(self.spec, 1)[0].to(self.device)
        eps = [float(self.config["report"]["main_eps_255"])]
        seed, batch_size = evaluation["attack_kmeans_seed"], self.sizes.attack_batch_size

        def run():
            attack_test_set(
                model, images, labels, params, eps, seed, batch_size, self.device, fast_path
            )

        return run

    def evaluation(self, n: int, n_classes: int, device: torch.device) -> Callable:
        """robdml.evaluation's metrics of synthetic embeddings (class centre + noise, unit norm):
        k-means metrics on `device`, retrieval metrics on the CPU embeddings, as it runs them."""
        evaluation = self.config["evaluation"]
        labels = torch.arange(n) % n_classes
        centres = torch.randn(n_classes, EMBEDDING_DIM, generator=self.random)
        noise = torch.randn(n, EMBEDDING_DIM, generator=self.random)
        embeddings = F.normalize(centres[labels] + 2.0 * noise, dim=1)

        def run():
            evaluate_clustering(
                embeddings.to(device), labels.numpy(), evaluation["kmeans_seeds"],
                evaluation["kmeans_n_init"], evaluation["chance_repeats"], "torch",
            )  # fmt: skip
            retrieval_metrics(embeddings, labels, tuple(evaluation["recall_ks"]))

        return run


def measured_overlay(
    config: dict, device: str, backbone: dict, dataset: dict, img_per_s: float, processor: str
) -> dict:
    """The config overlay that puts a measured clean training throughput, `img_per_s` of
    `backbone` on `dataset`'s image size on `device` (`cuda` or `cpu`) by `processor`, where
    the cost model reads it: the throughput at `throughput_image_size`, and the utilisation it
    implies against the config's peak for that device."""
    resources = config["resources"]
    reference = resources["throughput_image_size"][device]
    stated = resources["expected"][device]
    flop_per_s = img_per_s * forward_flops(backbone, dataset) / resources["pass_cost"]["forward"]
    utilisation = flop_per_s / (stated["peak_tflops"] * 1e12)
    at_reference = img_per_s * (dataset["image_size"] / reference) ** 2
    name = f"{processor}, measured by gpu_check (utilisation against: {stated['name']})"
    return {
        "resources": {
            "throughput_img_per_s": {device: {backbone["arch"]: round(at_reference, 1)}},
            "expected": {device: {"name": name, "utilisation": round(utilisation, 4)}},
        }
    }


def write_overlay(path: Path, overlay: dict, note: str) -> None:
    """`overlay` as YAML under a comment line `note`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {note}\n" + yaml.safe_dump(overlay, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, e.g. on a CPU")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--config", default=str(REPO / "config/config.yaml"))
    parser.add_argument("--overlay", default=str(OVERLAY), help="measured resources (GPU only)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name == "cpu" and not args.smoke:
        parser.error("no CUDA device visible: run on a GPU node, or --smoke for a tiny CPU run")
    device = setup(args.threads, device_name, 0)
    run = sizes(args.smoke, config)
    check = Check(run, config, device)
    pgd_at = {
        "method": "pgd_at",
        "attack": {**config["training"]["attack"], "steps": run.pgd_steps},
        "clean_weight": config["defense_methods"]["pgd_at"]["clean_weight"],
    }
    attack_set = 4 * run.attack_batch_size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"gpu_check: {name}, torch {torch.__version__}, {args.threads} CPU threads; {run.arch} at "
        f"{run.image_size} px, training batch {run.batch_size}, PGD-AT {run.pgd_steps} steps, "
        f"attack mi {run.attack_steps} APGD steps on sets of {attack_set}",
        flush=True,
    )
    modes = {
        "fast": lambda: configure_fast_path(device, GPU_DEFAULTS),
        "plain": lambda: configure_fast_path(device, dict.fromkeys(GPU_DEFAULTS, False)),
    }
    # key: (job given a fast path, images per call, warm-up calls, timed calls at most, time box)
    throughputs = {
        "train_img_s": (
            lambda fast_path: check.training({"method": "vanilla"}, fast_path),
            run.batch_size, run.warmup, run.iterations, 20.0,
        ),
        "pgd_at_img_s": (
            lambda fast_path: check.training(pgd_at, fast_path),
            run.batch_size, max(1, run.warmup - 1), run.iterations // 2, 30.0,
        ),
        "attack_img_s": (check.attack, attack_set, 1, 2, 20.0),
    }  # fmt: skip
    rows = {}  # measurement -> {mode: (value, peak GB)}
    for key, (job, images_per_call, warmup, calls, time_box) in throughputs.items():
        for mode, fast_path in modes.items():
            seconds, peak = measure(job(fast_path()), warmup, calls, time_box, device)
            rows.setdefault(key, {})[mode] = (images_per_call / seconds, peak)
            print(
                f"  {key} {mode}: {images_per_call / seconds:.1f}, peak {peak:.2f} GB", flush=True
            )
            release(device)
    cpu = torch.device("cpu")
    for index, (size, (n, n_classes)) in enumerate(run.eval_sizes.items()):
        key = f"eval_{size}_s"
        for mode, eval_device in (("fast", device), ("plain", cpu)):
            warmup = int(eval_device.type == "cuda" and index == 0)  # first use of the kernels
            job = check.evaluation(n, n_classes, eval_device)
            seconds, peak = measure(job, warmup, 1, 0.0, eval_device)
            rows.setdefault(key, {})[mode] = (seconds, peak)
            print(f"  {key} {mode} (k-means on {eval_device.type}): {seconds:.2f}", flush=True)
            release(device)
    if not args.smoke:
        img_per_s = rows["train_img_s"]["fast"][0]
        overlay = measured_overlay(
            config, device.type, check.spec["backbone"], check.spec["dataset"], img_per_s, name
        )
        note = f"gpu_check on {name}, torch {torch.__version__}: pass as an extra --configfile"
        write_overlay(Path(args.overlay), overlay, note)
        print(f"measured resources written to {args.overlay}", flush=True)
    header = ("measurement", "fast", "plain", "speed-up", "GB fast", "GB plain")
    print("{:<14} {:>9} {:>9} {:>9} {:>8} {:>9}".format(*header))
    for key, row in rows.items():
        (fast, fast_peak), (plain, plain_peak) = row["fast"], row["plain"]
        speedup = plain / fast if key.startswith("eval") else fast / plain
        print(
            f"{key:<14} {fast:>9.2f} {plain:>9.2f} {speedup:>8.2f}x {fast_peak:>8.2f} "
            f"{plain_peak:>9.2f}"
        )
    ratios = [rows[key]["fast"][0] / rows[key]["plain"][0] for key in throughputs]
    fast_vs_plain = math.exp(sum(map(math.log, ratios)) / len(ratios))
    peak_gb = max(row["fast"][1] for row in rows.values())
    print(
        f"RESULT fast_vs_plain={fast_vs_plain:.2f} "
        f"train_img_s={rows['train_img_s']['fast'][0]:.1f} "
        f"pgd_at_img_s={rows['pgd_at_img_s']['fast'][0]:.1f} "
        f"attack_img_s={rows['attack_img_s']['fast'][0]:.1f} "
        f"eval_inshop_s={rows['eval_inshop_s']['fast'][0]:.2f} peak_gb={peak_gb:.2f}"
    )


if __name__ == "__main__":
    main()
