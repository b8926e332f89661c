"""Building members from a spec, and the one-file model format (single model or ensemble)."""

from pathlib import Path

import torch
from torch import nn

from robdml.io import spec_hash, torch_load, torch_save
from robdml.models.embedding import EmbeddingModel, Ensemble
from robdml.models.external import EXTERNAL_FORMAT, load_external
from robdml.runtime import generator

MODEL_FORMAT = "robdml-model/1"
INIT_STREAMS = {"trunk": 0, "head": 1, "proxies": 2}


def member_generator(seed: int, member: int, part: str) -> torch.Generator:
    """The generator that initialises `part` (trunk, head or proxies) of member `member` at
    `seed`. Keyed by (seed, member, part), so no two seeds or members share an initialisation;
    member 0 draws exactly what the single model with that seed draws."""
    return generator(seed, member, INIT_STREAMS[part])


def build_members(
    spec: dict, n_members: int, weights_file: str | Path | None = None
) -> list[EmbeddingModel]:
    """Fresh members, each trunk and head drawn from its own (seed, member) generator; a
    trunk with ImageNet weights (spec backbone `weights`) reads them from `weights_file`."""
    members = []
    for index in range(n_members):
        trunk_generator = member_generator(spec["seed"], index, "trunk")
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=trunk_generator)))
        # the trunk's layers draw from torch's global generator, the head from its own
        member = EmbeddingModel(spec["backbone"], spec["dataset"], weights_file)
        member.init_head(member_generator(spec["seed"], index, "head"))
        members.append(member)
    return members


def save_model(path: str | Path, spec: dict, members: list[nn.Module], history: list) -> None:
    """One file per trained model, ensembles included; `history` holds no timings, so equal
    trainings write byte-identical files."""
    torch_save(
        path,
        {
            "format": MODEL_FORMAT,
            "spec": spec,
            "spec_hash": spec_hash(spec),
            "members": [member.state_dict() for member in members],
            "history": history,
        },
    )


def load_model(
    path: str | Path, device: torch.device | str = "cpu", member: int | None = None
) -> tuple[nn.Module, dict]:
    """(model in eval mode, spec); an ensemble file loads as an `Ensemble`, which is one model,
    or, with `member`, as that member alone. An external model's file (robdml.models.external)
    loads as its wrapped model."""
    payload = read_model_file(path)
    if payload["format"] == EXTERNAL_FORMAT:
        if member not in (None, 0):
            raise ValueError(f"{path} is one external model; there is no member {member}")
        model, spec = load_external(payload)
        return model.to(device), spec
    spec = payload["spec"]
    spec = {**spec, "backbone": {**spec["backbone"], "weights": None}}  # weights come from file
    members = build_members(spec, len(payload["members"]))
    for module, state in zip(members, payload["members"], strict=True):
        module.load_state_dict(state)
    if member is not None:
        if not 0 <= member < len(members):
            raise ValueError(f"{path} has {len(members)} member(s); there is no member {member}")
        model = members[member]
    else:
        model = members[0] if len(members) == 1 else Ensemble(members)
    return model.to(device).eval(), payload["spec"]


def read_model_file(path: str | Path) -> dict:
    """The contents of a trained or an external model's file, read safely (UnreadableFileError
    for anything else)."""
    rebuild = f"rule train or import_external writes it; rebuild it: snakemake --forcerun {path}"
    return torch_load(path, "model file", rebuild, (MODEL_FORMAT, EXTERNAL_FORMAT))
