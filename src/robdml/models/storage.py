"""Building members from a spec, and the one-file model format (single model or ensemble)."""

from pathlib import Path

import torch
from torch import nn

from robdml.io import spec_hash, torch_save
from robdml.models.embedding import EmbeddingModel, Ensemble

MODEL_FORMAT = "robdml-model/1"
MEMBER_SEED_STRIDE = 7919


def member_seed(seed: int, member: int) -> int:
    """Init seed of ensemble member `member`; member 0 uses `seed` itself, so a one-member
    ensemble starts from exactly the weights of the single model with that seed."""
    return seed + MEMBER_SEED_STRIDE * member


def build_members(spec: dict, n_members: int) -> list[EmbeddingModel]:
    """Fresh members, each initialised from its own seed."""
    members = []
    for index in range(n_members):
        torch.manual_seed(member_seed(spec["seed"], index))
        members.append(EmbeddingModel(spec["backbone"], spec["dataset"]))
    return members


def save_model(path: str | Path, spec: dict, members: list[nn.Module], history: list) -> None:
    """One file per trained model, ensembles included."""
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
    or, with `member`, as that member alone."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a {MODEL_FORMAT} file")
    spec = payload["spec"]
    spec = {**spec, "backbone": {**spec["backbone"], "pretrained": False}}  # weights come from file
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
