"""Embedding models trained elsewhere (pytorch-metric-learning, robrank, timm, one's own code),
in the package's model contract so that every attack and metric treats them like a trained
defense: images in [0, 1] in, normalisation inside `forward`, L2-normalised embeddings out.

An entry names a factory, `path/to/file.py:function`, that returns an `nn.Module` mapping
normalised images to embeddings, an optional weights file (a state dict, read with
`weights_only=True`: no code runs from it) and the input normalisation. Everything that can be
wrong with an entry stops with one line naming the entry and what is wrong, before any attack
runs (`ExternalModelError`).
"""

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robdml.factory import factory_file, split_factory
from robdml.io import UnreadableFileError, sha256sum, torch_load, torch_save

EXTERNAL_FORMAT = "robdml-external/1"
# the largest difference between two evaluations of the same images that still counts as
# the same embedding (float reordering between batch sizes)
SAME_EMBEDDING = 1e-4
# test images the contract is checked on: enough to see an embedding depend on its batch,
# few enough for a CPU job with a ResNet-50
CHECK_IMAGES = 8


class ExternalModelError(ValueError):
    """An external model entry that cannot be used; the message is one line."""


class ExternalModel(nn.Module):
    """`module` (normalised images -> embeddings) in the model contract: images in [0, 1],
    normalised by `mean` and `std` per channel inside `forward`, output L2-normalised fp32."""

    def __init__(self, module: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.module = module
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unit embeddings [N, D] (a module's [N, D, 1, 1] output, as pooled trunks give, is
        flattened)."""
        embeddings = self.module((images - self.mean) / self.std)
        return F.normalize(embeddings.float().flatten(start_dim=1), dim=1)


def load_factory(name: str, factory: str) -> Callable[[], nn.Module]:
    """The function `factory` ('path/to/file.py:function') names, imported from its file."""
    path, function = split_factory(factory)
    if not path or not function:
        raise ExternalModelError(
            f"external model {name!r}: factory {factory!r} is not 'path/to/file.py:function'"
        )
    if not Path(path).is_file():
        raise ExternalModelError(f"external model {name!r}: factory file {path} does not exist")
    module_name = f"robdml_external_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file: any failure is reported as one line
        raise ExternalModelError(
            f"external model {name!r}: importing {path} failed: {type(error).__name__}: {error}"
        ) from None
    if not callable(getattr(module, function, None)):
        raise ExternalModelError(f"external model {name!r}: {path} has no function {function!r}")
    return getattr(module, function)


def build_external(name: str, entry: dict) -> ExternalModel:
    """The wrapped model of one entry ({factory, weights, mean, std}), in eval mode on the CPU."""
    factory = load_factory(name, entry["factory"])
    try:
        module = factory()
    except Exception as error:  # the user's code: any failure is reported as one line
        raise ExternalModelError(
            f"external model {name!r}: {entry['factory']} raised {type(error).__name__}: {error}"
        ) from None
    if not isinstance(module, nn.Module):
        raise ExternalModelError(
            f"external model {name!r}: {entry['factory']} returned a {type(module).__name__}, "
            "not a torch.nn.Module"
        )
    if entry.get("weights"):
        load_weights(name, module, entry["weights"])
    return ExternalModel(module, entry["mean"], entry["std"]).eval()


def load_weights(name: str, module: nn.Module, path: str) -> None:
    """A state dict from `path`, read with `weights_only=True`, loaded strictly."""
    if not Path(path).is_file():
        raise ExternalModelError(f"external model {name!r}: weights file {path} does not exist")
    try:
        state = torch_load(path, "state dict", "save one: torch.save(module.state_dict(), path)")
    except UnreadableFileError as error:
        raise ExternalModelError(f"external model {name!r}: {error}") from None
    if not isinstance(state, dict):
        raise ExternalModelError(f"external model {name!r}: {path} holds no state dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0].rstrip(":.")
        raise ExternalModelError(
            f"external model {name!r}: {path} does not fit the factory's model ({first})"
        ) from None


def check_external(
    name: str, model: ExternalModel, images: torch.Tensor, embedding_dim: int | None = None
) -> None:
    """On one test batch (`images` in [0, 1], at least three): embeddings of shape [N, D] (D =
    `embedding_dim` when given), finite, the same on a second pass (no dropout or other
    randomness in eval mode) and for the first two images alone as within the batch (no
    BatchNorm using batch statistics in eval mode)."""
    model.eval()
    with torch.no_grad():
        try:
            raw = model.module((images - model.mean) / model.std)
        except Exception as error:
            raise ExternalModelError(
                f"external model {name!r}: forward on a test batch of shape "
                f"{tuple(images.shape)} failed: {type(error).__name__}: {error}"
            ) from None
        if raw.dim() < 2 or raw.shape[0] != len(images) or raw[0].numel() != raw.shape[1]:
            raise ExternalModelError(
                f"external model {name!r}: embeddings of shape {tuple(raw.shape)} for "
                f"{len(images)} images (expected [{len(images)}, D])"
            )
        embeddings = model(images)
        if embedding_dim is not None and embeddings.shape[1] != embedding_dim:
            raise ExternalModelError(
                f"external model {name!r}: {embeddings.shape[1]}-d embeddings, the entry says "
                f"{embedding_dim}"
            )
        if not torch.isfinite(embeddings).all():
            raise ExternalModelError(f"external model {name!r}: non-finite embeddings")
        if (model(images) - embeddings).abs().max() > SAME_EMBEDDING:
            raise ExternalModelError(
                f"external model {name!r}: two passes in eval mode give different embeddings "
                "(dropout or other randomness active in eval mode)"
            )
        if (model(images[:2]) - embeddings[:2]).abs().max() > SAME_EMBEDDING:
            raise ExternalModelError(
                f"external model {name!r}: an image's embedding depends on its batch in eval "
                "mode (BatchNorm or similar using batch statistics)"
            )


def external_spec(name: str, entry: dict) -> dict:
    """What an external model's metrics records keep as its config: the entry, and the
    checksums of its factory file and weights (the code and numbers behind the result)."""
    weights = entry.get("weights")
    return {
        "external": name,
        **entry,
        "factory_sha256": sha256sum(factory_file(entry)),
        "weights_sha256": sha256sum(weights) if weights else None,
    }


def import_external(name: str, entry: dict, test_images: torch.Tensor, path: str | Path) -> None:
    """Build an entry's model, check it on the first CHECK_IMAGES test images (uint8) and
    write it as one model file (weights included) that `load_external` rebuilds from the
    factory."""
    model = build_external(name, entry)
    images = test_images[:CHECK_IMAGES].float() / 255
    check_external(name, model, images, entry.get("embedding_dim"))
    torch_save(
        path,
        {
            "format": EXTERNAL_FORMAT,
            "name": name,
            "spec": external_spec(name, entry),
            "state": model.state_dict(),
        },
    )


def load_external(payload: dict) -> tuple[ExternalModel, dict]:
    """(model in eval mode, spec) of an `import_external` file's contents."""
    spec = payload["spec"]
    entry = {key: spec[key] for key in ("factory", "mean", "std")}
    model = build_external(payload["name"], entry)
    model.load_state_dict(payload["state"])
    return model.eval(), spec
