"""Each defense's defining property, on tiny models (small CNN [4, 8] on 1x8x8 images)."""

import math

import pytest
import torch
from defense_toys import (
    DEMO_FULL,
    N_CLASSES,
    RECIPE,
    demo_defense,
    eat,
    replay,
    toy_batch,
    toy_step,
)

from conftest import REPO, TINY_CNN, TINY_DATASET
from robdml.config import (
    ConfigError,
    load_config,
    load_schema,
    read_config,
    validate_config,
)
from robdml.data.datasets import InMemoryImages
from robdml.defenses import DEFENSES, build_defense
from robdml.defenses.adp import ensemble_diversity
from robdml.defenses.dverge import feature_layers, layer_features
from robdml.defenses.gal import gradient_alignment_penalty
from robdml.defenses.trs import gradient_similarity
from robdml.models import EmbeddingModel
from robdml.training import make_optimizer, train


def record_training_inputs(member: torch.nn.Module) -> list[torch.Tensor]:
    """Inputs of `member`'s train-mode forwards (crafting runs in eval mode)."""
    seen: list[torch.Tensor] = []
    member.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()) if module.training else None
    )
    return seen


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_every_defense_loss_reaches_every_parameter_and_moves_it(name):
    """Every trunk, head and proxy parameter of every member gets a non-zero gradient from
    the defense's loss, and one optimiser step moves it (BatchNorm buffers change on any
    forward, so they prove nothing and are not looked at)."""
    params = demo_defense(name)
    defense = build_defense(params)
    step = toy_step(defense.n_members)
    images, labels = toy_batch()
    optimizer = make_optimizer(step.members, step.pal_losses, RECIPE)
    modules = step.members + step.pal_losses
    before = [{key: p.detach().clone() for key, p in m.named_parameters()} for m in modules]

    loss = defense.loss(step, images, labels, defense.member_masks(labels, seed=0))
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()

    for index, (module, old) in enumerate(zip(modules, before, strict=True)):
        for key, parameter in module.named_parameters():
            where = f"{name}: module {index} parameter {key}"
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, where
            assert not torch.equal(old[key], parameter.detach()), f"{where} did not move"


def test_trades_with_beta_zero_is_vanilla():
    step = toy_step(1)
    images, labels = toy_batch()
    mask = torch.ones(len(labels), 1, dtype=torch.bool)
    vanilla = build_defense({"method": "vanilla"}).loss(step, images, labels, mask)
    for divergence in ("kl", "cosine"):
        params = {**demo_defense("trades"), "beta": 0.0, "divergence": divergence}
        trades = build_defense(params).loss(step, images, labels, mask)
        assert torch.equal(trades, vanilla)


def test_trades_adds_beta_times_a_positive_divergence():
    """The robust term enters with a plus sign and scales with beta: a sign error or an ignored
    beta fails here (beta = 0 alone cannot tell)."""
    step = toy_step(1)
    images, labels = toy_batch()
    mask = torch.ones(len(labels), 1, dtype=torch.bool)
    losses = {}
    for beta in (0.0, 1.0, 3.0):
        params = {**demo_defense("trades"), "beta": beta}
        losses[beta] = build_defense(params).loss(replay(step), images, labels, mask).item()
    robust = losses[1.0] - losses[0.0]
    assert robust > 1e-4
    assert losses[3.0] - losses[0.0] == pytest.approx(3 * robust, rel=1e-4)


def test_pgd_at_trains_on_inputs_within_eps():
    params = demo_defense("pgd_at")
    eps = params["attack"]["eps_255"] / 255
    step = toy_step(1)
    images, labels = toy_batch()
    seen = record_training_inputs(step.members[0])
    build_defense(params).loss(step, images, labels, torch.ones(len(labels), 1, dtype=torch.bool))
    (trained_on,) = seen
    distance = (trained_on - images).abs().amax()
    assert 0.5 * eps < distance <= eps + 1e-6
    assert trained_on.min() >= 0 and trained_on.max() <= 1


@pytest.mark.parametrize("transfer", ["self", "ensemble_pal"])
def test_one_member_eat_trains_exactly_like_pgd_at(tmp_path, transfer):
    pixels = torch.randint(0, 256, (2 * RECIPE["batch_size"], 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(N_CLASSES).repeat_interleave(2 * RECIPE["batch_size"] // N_CLASSES)
    train_set = InMemoryImages(pixels, labels, None)
    pgd_at = demo_defense("pgd_at")
    assert pgd_at["clean_weight"] == 0
    eat_one = {
        "method": "eat",
        "members": 1,
        "attack": pgd_at["attack"],
        "split": "none",
        "transfer": transfer,
    }
    states = []
    for name, defense in (("pgd_at", pgd_at), ("eat", eat_one)):
        spec = {
            "dataset": TINY_DATASET,
            "backbone": TINY_CNN,
            "training": RECIPE,
            "defense": defense,
            "seed": 3,
        }
        model, checkpoint = tmp_path / f"{name}.pt", tmp_path / f"{name}.ckpt"
        train(spec, train_set, model, checkpoint, torch.device("cpu"))
        states.append(torch.load(model, weights_only=True)["members"])
    (pgd_at_state,), (eat_state,) = states
    assert pgd_at_state.keys() == eat_state.keys()
    for key in pgd_at_state:
        assert torch.equal(pgd_at_state[key], eat_state[key]), key


def test_joint_ens_at_trains_every_member_on_one_batch_crafted_against_the_ensemble():
    """The DVERGE code's AdvT baseline: one PGD batch per step, from the whole ensemble, and
    every member trains on it; `ens_at_independent` gives each member its own."""
    images, labels = toy_batch()
    batches = {}
    for name in ("ens_at", "ens_at_independent"):
        defense = build_defense(demo_defense(name))
        step = toy_step(defense.n_members)
        seen = [record_training_inputs(member) for member in step.members]
        defense.loss(step, images, labels, defense.member_masks(labels, seed=0))
        batches[name] = [trained_on for (trained_on,) in seen]
    joint, independent = batches["ens_at"], batches["ens_at_independent"]
    eps = demo_defense("ens_at")["attack"]["eps_255"] / 255
    for index, trained_on in enumerate(joint):
        assert torch.equal(trained_on, joint[0]), f"member {index} got another batch"
        assert 0.5 * eps < (trained_on - images).abs().amax() <= eps + 1e-6
    assert not torch.equal(independent[0], independent[1])
    assert not torch.equal(joint[0], independent[0])


def test_eat_split_masks():
    labels = torch.arange(6).repeat_interleave(7)  # 7 samples per class: parts cannot be even
    by_samples = eat(members=3, split="samples").member_masks(labels, seed=0)
    assert by_samples.shape == (len(labels), 3)
    assert (by_samples.sum(dim=1) == 2).all()  # each sample is left out by exactly one member
    part = (~by_samples).float().argmax(dim=1)
    per_class = torch.stack([torch.bincount(part[labels == c], minlength=3) for c in range(6)])
    assert (per_class.amax(dim=1) - per_class.amin(dim=1) <= 1).all()  # class-stratified
    sizes = torch.bincount(part, minlength=3)
    assert sizes.max() - sizes.min() <= 1
    assert torch.equal(by_samples, eat(split="samples").member_masks(labels, seed=0))
    assert not torch.equal(by_samples, eat(split="samples").member_masks(labels, seed=1))

    by_classes = eat(members=3, split="classes").member_masks(labels, seed=0)
    part = (~by_classes).float().argmax(dim=1)
    assert all(len(part[labels == c].unique()) == 1 for c in range(6))
    assert len(part.unique()) == 3

    assert eat(split="none").member_masks(labels, seed=0).all()


def test_eat_member_never_receives_its_excluded_part():
    defense = eat(members=3, split="samples")
    step = toy_step(3)
    images, labels = toy_batch()
    mask = defense.member_masks(labels, seed=0)
    seen = [record_training_inputs(member) for member in step.members]
    defense.loss(step, images, labels, mask)
    eps = defense.params["attack"]["eps_255"] / 255
    for index, (trained_on,) in enumerate(seen):
        keep = mask[:, index]
        assert len(trained_on) == keep.sum()
        assert (trained_on - images[keep]).abs().amax() <= eps + 1e-6


def parameter_gradients(defense, step, images, labels, mask) -> list[list[torch.Tensor]]:
    defense.loss(step, images, labels, mask).backward()
    return [[p.grad.clone() for p in member.parameters()] for member in step.members]


# With `ensemble_pal`, the Proxy Anchor loss couples the samples of a batch, so a peer's view of
# part 0 can shape the perturbation of a sample member 0 sees; the other modes craft per sample
# (ensemble_shift) or per member (self, random_peer) and leave member 0 independent of part 0.
@pytest.mark.parametrize("transfer", ["ensemble_shift", "self", "random_peer"])
def test_eat_member_gradient_ignores_its_excluded_part(transfer):
    defense = eat(members=3, split="samples", transfer=transfer)
    step = toy_step(3)
    images, labels = toy_batch()
    mask = defense.member_masks(labels, seed=0)
    excluded = ~mask[:, 0]
    changed = images.clone()
    changed[excluded] = torch.rand(changed[excluded].shape, generator=torch.Generator())
    original = parameter_gradients(defense, replay(step), images, labels, mask)
    modified = parameter_gradients(defense, replay(step), changed, labels, mask)
    for before, after in zip(original[0], modified[0], strict=True):
        assert torch.allclose(before, after, rtol=0, atol=1e-7)
    assert any(not torch.equal(b, a) for b, a in zip(original[1], modified[1], strict=True))


@pytest.mark.parametrize("transfer", ["ensemble_pal", "ensemble_shift"])
def test_self_transfer_batch_depends_on_every_member(transfer):
    defense = eat(members=3, split="samples", transfer=transfer)
    step = toy_step(3)
    images, labels = toy_batch()
    mask = defense.member_masks(labels, seed=0)
    reference = defense.shared_adversarial(replay(step), images, labels, mask)
    assert torch.equal(reference, defense.shared_adversarial(replay(step), images, labels, mask))
    for index in range(3):
        perturbed = replay(step)
        with torch.no_grad():
            perturbed.members[index].head.weight.add_(0.5)
        crafted = defense.shared_adversarial(perturbed, images, labels, mask)
        assert not torch.equal(crafted, reference), f"member {index} does not shape the batch"


def test_alignment_penalties_on_toy_gradients():
    g = torch.tensor([[1.0, 2.0, 0.0]])
    orthogonal = torch.tensor([[-2.0, 1.0, 0.0]])
    # GAL: logsumexp over pairs of cosines; identical members are the maximum, 1 + log(pairs)
    assert gradient_alignment_penalty([g, g, g]).item() == pytest.approx(1 + math.log(3))
    assert gradient_alignment_penalty([g, -g]).item() == pytest.approx(-1)
    assert gradient_alignment_penalty([g, orthogonal]).item() == pytest.approx(0, abs=1e-7)
    # TRS: mean |cosine|; zero only for orthogonal gradients, opposite ones count as aligned
    assert gradient_similarity([g, g, g]).item() == pytest.approx(1)
    assert gradient_similarity([g, -g]).item() == pytest.approx(1)
    assert gradient_similarity([g, orthogonal]).item() == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize(
    ("name", "penalty_only", "expected"),
    [
        ("gal", {"alignment_weight": 1.0}, 1 + math.log(3)),
        ("trs", {"scale": 1.0, "alignment_weight": 1.0, "smoothness_weight": 0.0}, 1.0),
    ],
)
def test_identical_members_pay_the_maximal_alignment_penalty(name, penalty_only, expected):
    step = toy_step(3)
    for member, pal in zip(step.members[1:], step.pal_losses[1:], strict=True):
        member.load_state_dict(step.members[0].state_dict())
        pal.load_state_dict(step.pal_losses[0].state_dict())
    images, labels = toy_batch()
    mask = torch.ones(len(labels), 3, dtype=torch.bool)
    params = {**demo_defense(name), **penalty_only}
    no_penalty = {key: 0.0 for key in penalty_only}
    with_penalty = build_defense(params).loss(step, images, labels, mask)
    without = build_defense({**params, **no_penalty}).loss(step, images, labels, mask)
    assert (with_penalty - without).item() == pytest.approx(expected, abs=1e-5)


def test_adp_diversity_grows_as_members_decorrelate():
    labels = torch.tensor([0])
    first = torch.tensor([[0.0, 3.0, 0.0, 0.0]])  # wrong-class mass on class 1
    elsewhere = torch.tensor([[0.0, 0.0, 0.0, 3.0]])  # ... on class 3
    det_offset = demo_defense("adp")["det_offset"]
    diversity = []
    for t in (0.0, 0.25, 0.5, 1.0):
        second = (1 - t) * first + t * elsewhere
        log_probabilities = [first.log_softmax(dim=1), second.log_softmax(dim=1)]
        diversity.append(ensemble_diversity(log_probabilities, labels, det_offset).item())
    assert diversity == sorted(diversity) and len(set(diversity)) == len(diversity)
    assert diversity[0] < math.log(det_offset) + 1  # identical members: a singular Gram


def test_one_member_eat_must_not_split():
    config = read_config(REPO / "config" / "demo_full.yaml")
    config["defenses"]["eat_alone"] = {"method": "eat", "members": 1}
    with pytest.raises(ConfigError, match="eat_alone.split"):
        validate_config(config, load_schema())


def test_dverge_layer_exists_on_every_configured_backbone():
    """`layer` is one setting for all backbones: it must name a layer of each of them."""
    paper = load_config()
    for config in (DEMO_FULL, paper):
        layer = config["defenses"]["dverge"]["layer"]
        dataset = {**next(iter(config["datasets"].values())), "image_size": 32}
        for backbone in config["backbones"].values():
            model = EmbeddingModel({**backbone, "weights": None}, dataset).eval()
            images = torch.rand(2, dataset["channels"], 32, 32)
            indices = range(len(feature_layers(model))) if layer == "random" else [layer]
            for index in indices:
                assert layer_features(model, images, index).shape[0] == 2
