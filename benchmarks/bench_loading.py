"""Training-set loading throughput (images/s): robdml's JPEG pipeline, its previous decoder and
Proxy Anchor's pipeline, in one run.

All three decode the same synthetic JPEGs (CUB-sized by default, 500x375, smooth content so
they compress like photos) and apply RandomResizedCrop(224) + horizontal flip in DataLoader
workers, with batches of (index, seed) keys as the trainer draws them:
- robdml: `ImageFiles` (Pillow decode via `read_rgb`, transforms.v2 on uint8 tensors);
- previous: the same with torchvision.io's `decode_image` (deprecated since torchvision 0.29),
  the decoder robdml used before;
- Proxy Anchor: PIL open + convert("RGB") + torchvision.transforms (v1) + ToTensor, the
  pipeline of the Proxy Anchor code base.
The page cache is warmed by one untimed pass per pipeline, so the numbers are decode +
augment, not disk; the timed passes take turns. The last line (RESULT) holds the rates and
the ratios.

    PYTHONPATH=src python benchmarks/bench_loading.py --images 512 --workers 2
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from robdml.data.datasets import ImageFiles
from robdml.data.transforms import train_augmentation


class TorchvisionImageFiles(ImageFiles):
    """robdml's previous loading: torchvision.io decode, then the same transforms.v2."""

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.io import ImageReadMode, decode_image

        index, sample_seed = key
        image = decode_image(str(self.paths[index]), mode=ImageReadMode.RGB)
        torch.manual_seed(sample_seed)
        return self.augment(image), self.labels[index]


class PilImages(Dataset):
    """Proxy Anchor's loading: PIL decode, v1 transforms, ToTensor."""

    def __init__(self, paths: list[Path], size: int):
        self.paths = paths
        self.transform = transforms.Compose(
            [
                transforms.RandomResizedCrop(size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        torch.manual_seed(seed)
        return self.transform(Image.open(self.paths[index]).convert("RGB")), 0


def write_jpegs(folder: Path, n: int, width: int, height: int) -> list[Path]:
    """Smooth random images (upsampled 16x12 noise plus fine grain), JPEG quality 90."""
    generator = torch.Generator().manual_seed(0)
    paths = []
    for index in range(n):
        coarse = torch.rand(1, 3, 12, 16, generator=generator)
        image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")
        image = image[0] * 200 + torch.rand(3, height, width, generator=generator) * 40
        path = folder / f"{index:05d}.jpg"
        pixels = image.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def images_per_second(
    datasets: dict[str, Dataset], n: int, batch_size: int, workers: int, epochs: int
) -> dict[str, float]:
    """Throughput of each dataset over `epochs` passes, after one untimed pass each (workers
    started, files cached). The passes take turns (one of each per epoch, the same keys for
    all), so a load that drifts during the run is shared rather than charged to one."""
    generator = torch.Generator().manual_seed(0)

    def batches():
        order = torch.randperm(n, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        keys = list(zip(order, seeds, strict=True))
        return [keys[start : start + batch_size] for start in range(0, n, batch_size)]

    def one_pass(dataset: Dataset, keys: list) -> float:
        start = time.perf_counter()
        for _ in DataLoader(dataset, batch_sampler=keys, num_workers=workers):
            pass
        return time.perf_counter() - start

    keys = batches()
    for dataset in datasets.values():
        one_pass(dataset, keys)
    seconds = dict.fromkeys(datasets, 0.0)
    for _ in range(epochs):
        keys = batches()
        for name, dataset in datasets.items():
            seconds[name] += one_pass(dataset, keys)
    return {name: epochs * n / total for name, total in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--size", type=int, default=224, help="crop side")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        paths = write_jpegs(Path(folder), args.images, args.width, args.height)
        augment = train_augmentation(
            {"train_transform": "imagenet_crop_flip", "image_size": args.size}
        )
        labels = torch.zeros(len(paths), dtype=torch.int64)
        pipelines = {
            "robdml ImageFiles (Pillow + v2)": ImageFiles(paths, labels, augment),
            "previous robdml (torchvision.io + v2)": TorchvisionImageFiles(paths, labels, augment),
            "Proxy Anchor (PIL + transforms v1)": PilImages(paths, args.size),
        }
        timing = (args.images, args.batch_size, args.workers, args.epochs)
        rates = images_per_second(pipelines, *timing)

    print(", ".join(f"{name}={value}" for name, value in vars(args).items()))
    for name, rate in rates.items():
        print(f"{name + ':':40s}{rate:8.1f} images/s")
    new, previous, baseline = rates.values()
    print(
        f"RESULT new_img_s={new:.1f} previous_img_s={previous:.1f}"
        f" proxy_anchor_img_s={baseline:.1f} new_vs_previous={new / previous:.2f}"
        f" new_vs_proxy_anchor={new / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
