"""Training-set loading throughput (images/s): robdml's JPEG pipeline against Proxy Anchor's.

Both decode the same synthetic JPEGs (CUB-sized by default, 500x375, smooth content so they
compress like photos) and apply RandomResizedCrop(224) + horizontal flip in DataLoader workers,
with batches of (index, seed) keys as the trainer draws them:
- robdml: `ImageFiles` (torchvision.io decode, transforms.v2 on uint8 tensors);
- baseline: PIL open + convert("RGB") + torchvision.transforms (v1) + ToTensor, the pipeline of
  the Proxy Anchor code base.
The page cache is warmed by one untimed pass, so the numbers are decode + augment, not disk.

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
from torchvision.io import encode_jpeg

from robdml.data.datasets import ImageFiles
from robdml.data.transforms import train_augmentation


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
        path.write_bytes(encode_jpeg(image.clamp(0, 255).to(torch.uint8), quality=90).numpy())
        paths.append(path)
    return paths


def images_per_second(
    dataset: Dataset, n: int, batch_size: int, workers: int, epochs: int
) -> float:
    """Throughput over `epochs` passes, after one untimed pass (workers started, files cached)."""
    generator = torch.Generator().manual_seed(0)

    def batches():
        order = torch.randperm(n, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        keys = list(zip(order, seeds, strict=True))
        return [keys[start : start + batch_size] for start in range(0, n, batch_size)]

    for _ in DataLoader(dataset, batch_sampler=batches(), num_workers=workers):
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in DataLoader(dataset, batch_sampler=batches(), num_workers=workers):
            pass
    return epochs * n / (time.perf_counter() - start)


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
        ours = ImageFiles(paths, torch.zeros(len(paths), dtype=torch.int64), augment)
        baseline = PilImages(paths, args.size)
        timing = (args.images, args.batch_size, args.workers, args.epochs)
        ours_rate = images_per_second(ours, *timing)
        baseline_rate = images_per_second(baseline, *timing)

    print(", ".join(f"{name}={value}" for name, value in vars(args).items()))
    print(f"robdml ImageFiles (torchvision.io + v2): {ours_rate:8.1f} images/s")
    print(f"Proxy Anchor (PIL + transforms v1):      {baseline_rate:8.1f} images/s")
    print(f"ratio robdml / baseline: {ours_rate / baseline_rate:.2f}")


if __name__ == "__main__":
    main()
