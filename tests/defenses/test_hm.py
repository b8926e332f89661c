"""HM (hardness manipulation, Zhou & Patel CVPR 2022) on tiny models (small CNN [4, 8], 1x8x8)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_CNN, TINY_DATASET, toy_images
from robdml.config import load_config
from robdml.data.batches import CLASS_PAIRS, epoch_batches
from robdml.data.datasets import InMemoryImages
from robdml.defenses import DEFENSES
from robdml.defenses.base import StepContext, eval_mode
from robdml.defenses.hm import (
    MINERS,
    HardnessManipulation,
    gradual_destination,
    hardness,
    intra_class_structure,
    meta_loss,
    mine,
)
from robdml.losses import proxy_anchor_loss
from robdml.models import build_members, load_model
from robdml.runtime import generator
from robdml.training import train

N_CLASSES, PER_CLASS = 4, 6
RECIPE = {"pal_margin": 0.1, "pal_alpha": 32}
ATTACK = {"eps_255": 16, "steps": 5, "step_fraction": 0.25}  # the glyph demo's training attack
PARAMS = {  # RobRank's ghmetsmi: HM[S, g_LGA] & ICS
    "method": "hm",
    "attack": ATTACK,
    "source": "softhard",
    "destination": "gradual",
    "meta_loss": "et",
    "triplet_margin": 0.2,
    "gradual_scale": 0.2,
    "ics_weight": 0.5,
}


def hm(**overrides) -> HardnessManipulation:
    return HardnessManipulation({**PARAMS, **overrides})


def toy_batch(seed: int = 0, per_class: int = PER_CLASS) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(N_CLASSES * per_class, 1, 8, 8, generator=rng)
    return images, torch.arange(N_CLASSES).repeat_interleave(per_class)


def toy_step(seed: int = 0) -> StepContext:
    (member,) = build_members({"seed": 0, "backbone": TINY_CNN, "dataset": TINY_DATASET}, 1)
    torch.manual_seed(0)
    pal = proxy_anchor_loss(N_CLASSES, TINY_CNN["embedding_dim"], RECIPE)
    return StepContext([member], [pal], torch.Generator().manual_seed(seed))


def replay(step: StepContext, seed: int = 0) -> StepContext:
    """An independent copy of `step`: weights, BatchNorm statistics, proxies, a fresh generator."""
    members, pals = copy.deepcopy(step.members), copy.deepcopy(step.pal_losses)
    return StepContext(members, pals, torch.Generator().manual_seed(seed))


def embed(step: StepContext, images: torch.Tensor) -> torch.Tensor:
    with eval_mode(step.members), torch.no_grad():
        return step.members[0](images)


def triplet_hardness(step: StepContext, triplet_images: torch.Tensor) -> torch.Tensor:
    e = embed(step, triplet_images)
    t = len(e) // 3
    return hardness(e[:t], e[t : 2 * t], e[2 * t :])


def manipulated(defense, step, images, labels):
    """(source triplets, destination, clean triplet images, manipulated triplet images)."""
    source, destination = defense.triplets(step, embed(step, images), labels)
    adversarial = defense.manipulate(step, images, source, destination)
    return source, destination, images[torch.cat(source)], adversarial


# --- the manipulation ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["et", "l2"])
def test_manipulation_moves_source_hardness_toward_the_destination(kind):
    """Random source, hardest destination (same anchors and positives, so H_d >= H_s): the
    perturbed triplets' meta-loss to H_d is below the clean triplets' and they got harder."""
    defense = hm(source="random", destination="hard", meta_loss=kind)
    step = toy_step()
    images, labels = toy_batch()
    _, destination, clean, adversarial = manipulated(defense, step, images, labels)
    before, after = triplet_hardness(step, clean), triplet_hardness(step, adversarial)
    assert (destination >= before - 1e-6).all()
    start, end = meta_loss(before, destination, kind), meta_loss(after, destination, kind)
    assert start > 0
    assert end < 0.5 * start
    assert after.mean() > before.mean()


def test_kl_manipulation_lowers_robranks_kl():
    """KL (L1-normalised vectors, RobRank's F.kl_div) decreases; a positive destination keeps
    its value finite. The destination is given directly, the PGD is the defense's."""
    defense = hm(source="random", destination="hard", meta_loss="kl")
    step = toy_step()
    images, labels = toy_batch()
    source, _ = defense.triplets(step, embed(step, images), labels)
    clean = images[torch.cat(source)]
    destination = torch.linspace(0.1, 1.0, len(source[0]))
    adversarial = defense.manipulate(step, images, source, destination)
    start = meta_loss(triplet_hardness(step, clean), destination, "kl")
    end = meta_loss(triplet_hardness(step, adversarial), destination, "kl")
    assert torch.isfinite(start) and torch.isfinite(end)
    assert end < start


def test_kl_against_a_negative_destination_is_nan_valued_but_still_perturbs():
    """RobRank's KL with the gradual adversary's negative destination: x log x of a negative
    target makes the value NaN, the input gradient stays finite, so the images still move."""
    defense = hm(source="random", meta_loss="kl")
    step = toy_step()
    images, labels = toy_batch()
    _, destination, clean, adversarial = manipulated(defense, step, images, labels)
    assert (destination < 0).all()
    assert torch.isnan(meta_loss(triplet_hardness(step, clean), destination, "kl"))
    assert torch.isfinite(adversarial).all() and not torch.equal(adversarial, clean)


def test_et_leaves_triplets_that_already_reach_their_destination_alone():
    """HM is not min-max: under ET a triplet at least as hard as its destination is not
    perturbed, one below it is."""
    defense = hm(source="random", destination="hard")
    step = toy_step()
    images, labels = toy_batch()
    source, _ = defense.triplets(step, embed(step, images), labels)
    clean = images[torch.cat(source)]
    before = triplet_hardness(step, clean)
    t = len(before)
    easy = torch.arange(t) % 2 == 0  # every other triplet gets a destination below it
    destination = torch.where(easy, before - 1.0, before + 0.5)
    moved = (defense.manipulate(step, images, source, destination) != clean).flatten(1).any(1)
    for part in range(3):  # anchors, positives, negatives of each triplet
        assert not moved[part * t : (part + 1) * t][easy].any()
        assert moved[part * t : (part + 1) * t][~easy].all()


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def test_meta_losses_match_robrank_definitions():
    s, d = torch.tensor([0.1, -0.3, 0.2]), torch.tensor([0.0, -0.1, 0.5])
    assert meta_loss(s, d, "et").item() == pytest.approx(((0.2**2) + 0.3**2) / 3)  # s < d only
    assert meta_loss(s, d, "l2").item() == pytest.approx(F.mse_loss(s, d).item())
    positive = torch.tensor([0.2, 0.3, 0.5])
    expected = F.kl_div(F.normalize(s, p=1, dim=0), positive, reduction="mean")
    assert meta_loss(s, positive, "kl").item() == pytest.approx(expected.item())
    assert meta_loss(s, s, "l2") == 0 and meta_loss(s, s - 1, "et") == 0


def test_perturbations_stay_in_the_eps_ball_and_the_unit_interval():
    """The 3T images the update trains on are the source triplets' images, moved by at most
    eps (5 steps of eps / 4: L2 never stops, so the eps projection binds), inside [0, 1]."""
    defense = hm(source="random", destination="hard", meta_loss="l2")
    step = toy_step()
    images, labels = toy_batch()
    images[0, 0, :4] = 0.0
    images[1, 0, :4] = 1.0  # pixels on the box: the projection onto [0, 1] must hold
    _, _, clean, adversarial = manipulated(defense, replay(step), images, labels)
    eps = ATTACK["eps_255"] / 255
    distance = (adversarial - clean).abs().amax()
    assert eps - 1e-6 <= distance <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1

    seen = []
    step.members[0].register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()) if module.training else None
    )
    defense.loss(step, images, labels, None)
    assert any(x.shape == adversarial.shape and torch.equal(x, adversarial) for x in seen)


def test_equal_source_and_destination_perturb_nothing():
    defense = hm(source="random", destination="random")
    step = toy_step()
    images, labels = toy_batch()
    _, _, clean, adversarial = manipulated(defense, step, images, labels)
    assert torch.equal(adversarial, clean)


# --- the update ------------------------------------------------------------------------------


@pytest.mark.parametrize("ics_weight", [0.0, 0.5])
def test_loss_reaches_trunk_head_and_proxies(ics_weight):
    defense = hm(ics_weight=ics_weight)
    step = toy_step()
    images, labels = toy_batch()
    loss = defense.loss(step, images, labels, None)
    assert torch.isfinite(loss)
    loss.backward()
    for module in (step.members[0].trunk, step.members[0].head, step.pal_losses[0]):
        for name, parameter in module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_update_is_proxy_anchor_on_the_manipulated_triplets_plus_weighted_ics():
    """loss = PAL(adversarial triplets, their labels) + w x ICS(clean a, adversarial a, clean
    p), each recomputed here from the defense's own triplets; a large eps makes ICS active."""
    attack = {"eps_255": 96, "steps": 5, "step_fraction": 0.25}
    step = toy_step()
    images, labels = toy_batch()
    expected = {}
    for weight in (0.0, 1.0, 3.0):
        defense = hm(attack=attack, source="random", destination="hard", ics_weight=weight)
        expected[weight] = defense.loss(replay(step), images, labels, None).item()

    copy_ = replay(step)
    defense = hm(attack=attack, source="random", destination="hard", ics_weight=1.0)
    source, _, _, adversarial = manipulated(defense, copy_, images, labels)
    member, pal = copy_.members[0], copy_.pal_losses[0]
    t = len(source[0])
    pairs = member(images[torch.cat(source[:2])])
    adversarial_embeddings = member(adversarial)
    ics = intra_class_structure(pairs[:t], adversarial_embeddings[:t], pairs[t:]).item()
    pal_value = pal(adversarial_embeddings, labels[torch.cat(source)]).item()
    assert ics > 1e-3
    assert expected[0.0] == pytest.approx(pal_value, rel=1e-5)
    assert expected[1.0] - expected[0.0] == pytest.approx(ics, rel=1e-4)
    assert expected[3.0] - expected[0.0] == pytest.approx(3 * ics, rel=1e-4)


def test_ics_is_a_margin_zero_triplet_on_clean_anchor_adversarial_anchor_clean_positive():
    rng = torch.Generator().manual_seed(0)
    anchors = F.normalize(torch.randn(5, 8, generator=rng), dim=1)
    positives = F.normalize(anchors + 0.3 * torch.randn(5, 8, generator=rng), dim=1)
    assert intra_class_structure(anchors, anchors, positives) == 0  # unperturbed anchors
    assert intra_class_structure(anchors, positives, positives) == 0  # as far as the positive
    near = F.normalize(anchors + 0.01 * torch.randn(5, 8, generator=rng), dim=1)
    assert intra_class_structure(anchors, near, positives) == 0
    far = -anchors  # the adversarial anchor left for the antipode
    expected = (F.pairwise_distance(anchors, far) - F.pairwise_distance(anchors, positives)).mean()
    assert intra_class_structure(anchors, far, positives).item() == pytest.approx(expected.item())


def test_same_generator_seed_reproduces_the_step_and_another_seed_does_not():
    step = toy_step()
    images, labels = toy_batch()
    runs = []
    for seed in (0, 0, 1):
        copy_ = replay(step, seed)
        source, destination = hm().triplets(copy_, embed(copy_, images), labels)
        loss = hm().loss(replay(step, seed), images, labels, None)
        runs.append((torch.cat(source), destination, loss))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][2], runs[1][2])
    assert not torch.equal(runs[0][0], runs[2][0])


# --- gradual adversary -----------------------------------------------------------------------


def test_linear_gradual_adversary():
    assert gradual_destination(None, 0.2, 0.2) == -0.2  # no loss yet: RobRank's 2.0 clips to m
    assert gradual_destination(5.0, 0.2, 0.2) == pytest.approx(-0.2)
    assert gradual_destination(0.1, 0.2, 0.2) == pytest.approx(-0.1)
    assert gradual_destination(0.05, 0.2, 0.3) == pytest.approx(-0.075)
    assert gradual_destination(0.0, 0.2, 0.2) == 0.0
    assert gradual_destination(-1.0, 0.2, 0.2) == 0.0


def test_gradual_destination_follows_the_previous_triplet_loss_within_a_step_context():
    defense = hm()
    step = toy_step()
    images, labels = toy_batch()
    assert defense.previous_loss(step) is None
    _, destination = defense.triplets(replay(step), embed(step, images), labels)
    assert torch.all(destination == -PARAMS["gradual_scale"])

    defense.loss(step, images, labels, None)
    previous = defense.previous_loss(step)
    assert previous is not None and previous >= 0
    _, destination = defense.triplets(step, embed(step, images), labels)
    expected = gradual_destination(previous, PARAMS["triplet_margin"], PARAMS["gradual_scale"])
    assert torch.allclose(destination, torch.full_like(destination, expected))
    assert expected != -PARAMS["gradual_scale"]  # the toy loss is below the margin: it moved


def test_gradual_memory_restarts_with_each_step_context_so_resume_is_exact():
    """A new StepContext (a new epoch in `train`, also after a resume) starts from no loss: a
    defense that already ran an epoch computes the same step as a freshly built one."""
    step = toy_step()
    images, labels = toy_batch()
    used = hm()
    used.loss(step, images, labels, None)
    assert used.previous_loss(step) is not None
    next_epoch = replay(step, seed=5)
    assert used.previous_loss(next_epoch) is None
    resumed = hm().loss(replay(next_epoch, seed=5), images, labels, None)
    continued = used.loss(next_epoch, images, labels, None)
    assert torch.equal(resumed, continued)


@pytest.mark.parametrize("batches", ["random", CLASS_PAIRS])
def test_interrupted_hm_training_resumes_to_the_same_parameters(
    tmp_path, tiny_spec, monkeypatch, batches
):
    """End to end through `train`: preempted in epoch 2 and resumed from the epoch-1 checkpoint
    (with a fresh defense), HM with the gradual adversary ends where the uninterrupted run does.
    Random sources leave the toy triplets easier than the destination, so it matters."""
    monkeypatch.setitem(DEFENSES, "hm", HardnessManipulation)
    tiny_spec["training"]["epochs"] = 3
    tiny_spec["defense"] = {**PARAMS, "source": "random", "batches": batches}
    data = InMemoryImages(*toy_images(), None)
    train(tiny_spec, data, tmp_path / "full.pt", tmp_path / "full.ckpt", "cpu")

    calls = {"n": 0}
    original = HardnessManipulation.loss

    def crash_in_epoch_two(self, *args):
        calls["n"] += 1
        if calls["n"] == 7:  # 4 batches per epoch: the third batch of epoch 2
            raise KeyboardInterrupt("simulated preemption")
        return original(self, *args)

    monkeypatch.setattr(HardnessManipulation, "loss", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_spec, data, tmp_path / "resumed.pt", tmp_path / "resumed.ckpt", "cpu")
    monkeypatch.setattr(HardnessManipulation, "loss", original)
    train(tiny_spec, data, tmp_path / "resumed.pt", tmp_path / "resumed.ckpt", "cpu")
    full, _ = load_model(tmp_path / "full.pt")
    resumed, _ = load_model(tmp_path / "resumed.pt")
    for (key, p), (_, q) in zip(
        full.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), key


def test_gradual_memory_is_the_triplet_loss_on_the_manipulated_triplets():
    step = toy_step()
    images, labels = toy_batch()
    defense = hm(ics_weight=0.0)
    copy_ = replay(step)
    source, destination, _, adversarial = manipulated(hm(), copy_, images, labels)
    e = copy_.members[0](adversarial)
    t = len(source[0])
    expected = F.triplet_margin_loss(e[:t], e[t : 2 * t], e[2 * t :], margin=0.2).item()
    used = replay(step)
    defense.loss(used, images, labels, None)
    assert defense.previous_loss(used) == pytest.approx(expected, rel=1e-5)


# --- mining ----------------------------------------------------------------------------------


def mined_batch(method: str, seed: int = 0):
    rng = torch.Generator().manual_seed(seed)
    embeddings = F.normalize(torch.randn(N_CLASSES * PER_CLASS, 8, generator=rng), dim=1)
    labels = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
    anchors = torch.arange(len(labels))
    same_others = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=bool)
    positives = torch.multinomial(same_others.float(), 1, generator=rng).squeeze(1)
    triplets = mine(method, embeddings, labels, anchors, positives, 0.2, rng)
    return embeddings, labels, positives, triplets


@pytest.mark.parametrize("method", MINERS)
def test_miners_return_valid_triplets(method):
    embeddings, labels, random_positives, (a, p, n) = mined_batch(method)
    assert (labels[a] == labels[p]).all() and (a != p).all()
    assert (labels[a] != labels[n]).all()
    if method != "softhard":
        assert torch.equal(p, random_positives)  # shared with the destination triplets


def test_miner_conditions():
    for method in ("semihard", "softhard", "hard"):
        embeddings, labels, positives, (a, p, n) = mined_batch(method)
        distances = torch.cdist(embeddings, embeddings)
        same = labels[:, None] == labels[None, :]
        negative_distances = distances.masked_fill(same, torch.inf)
        if method == "hard":
            assert torch.equal(n, negative_distances.argmin(dim=1))
        if method == "semihard":
            dap, dan = distances[a, p], distances[a, n]
            exists = (
                (negative_distances > dap[:, None]) & (negative_distances < dap[:, None] + 0.2)
            ).any(1)
            assert exists.any()
            assert ((dap < dan) & (dan < dap + 0.2))[exists].all()
        if method == "softhard":
            others = same & ~torch.eye(len(labels), dtype=bool)
            farthest = distances.masked_fill(~others, -torch.inf).amax(dim=1)
            nearest = negative_distances.amin(dim=1)
            soft_negative = (negative_distances < farthest[:, None]).any(1)
            soft_positive = (distances.masked_fill(~others, -torch.inf) > nearest[:, None]).any(1)
            assert soft_negative.any() and soft_positive.any()
            assert (distances[a, n] < farthest)[soft_negative].all()
            assert (distances[a, p] > nearest)[soft_positive].all()


def test_samples_without_positive_are_not_anchors_and_no_anchor_means_clean_training():
    step = toy_step()
    images, labels = toy_batch()
    labels = labels.clone()
    labels[0] = N_CLASSES  # a class of its own in this batch
    (a, p, n), destination = hm().triplets(step, embed(step, images), labels)
    assert 0 not in a.tolist() and len(a) == len(labels) - 1 == len(destination)

    distinct = torch.arange(len(labels))
    pal = proxy_anchor_loss(len(labels), TINY_CNN["embedding_dim"], RECIPE)
    lonely = StepContext(step.members, [pal], torch.Generator().manual_seed(0))
    assert hm().triplets(lonely, embed(lonely, images), distinct) is None
    expected = pal(step.members[0](images), distinct)
    assert torch.equal(hm().loss(lonely, images, distinct, None), expected)


# --- class-paired (SPC-2) batches ------------------------------------------------------------


def class_paired_batch(batch_size: int = 12, seed: int = 0):
    """A batch as the trainer's class_pairs sampler draws it from the toy set: (images, labels)."""
    images, labels = toy_batch(seed)
    (batch, *_) = epoch_batches(CLASS_PAIRS, labels, batch_size, generator(seed, 0))
    index = torch.tensor([sample for sample, _ in batch])
    return images[index], labels[index]


@pytest.mark.parametrize("source", MINERS)
def test_on_class_pairs_the_anchors_are_the_first_of_each_pair_and_the_positives_their_partner(
    source,
):
    """RobRank's SPC-2: T = batch_size / 2 anchors, the even half; positives their partners
    (the miners but softhard keep them; softhard mines its own among the same class). Random
    batch sampling makes every sample with a partner an anchor, here all 12."""
    step = toy_step()
    images, labels = class_paired_batch()
    defense = hm(source=source, batches=CLASS_PAIRS)
    (a, p, n), destination = defense.triplets(step, embed(step, images), labels)
    assert torch.equal(a, torch.arange(0, 12, 2)) and len(destination) == 6
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all()
    if source != "softhard":
        assert torch.equal(p, a + 1)
    (a, _, _), _ = hm(source=source).triplets(step, embed(step, images), labels)
    assert len(a) == 12


def test_class_pairs_refuse_a_batch_that_is_not_pairs_of_one_class():
    step = toy_step()
    images, labels = toy_batch()  # class by class: samples 5 and 6 are of two classes
    defense = hm(batches=CLASS_PAIRS)
    assert defense.triplets(step, embed(step, images), labels) is not None
    with pytest.raises(ValueError, match="class pairs"):
        defense.triplets(step, embed(step, images[5:23]), labels[5:23])


def test_hm_trains_on_class_pairs_with_half_the_batch_as_anchors(tmp_path, tiny_spec, monkeypatch):
    """Through `train`: HM as the config has it (`batches: class_pairs`) gets class-paired
    batches and mines batch_size / 2 anchors in every step."""
    assert load_config()["defenses"]["hm"]["batches"] == CLASS_PAIRS
    anchors = []
    original = HardnessManipulation.triplets

    def counting(self, step, embeddings, labels):
        mined = original(self, step, embeddings, labels)
        anchors.append(len(mined[0][0]))
        return mined

    monkeypatch.setattr(HardnessManipulation, "triplets", counting)
    tiny_spec["defense"] = {**PARAMS, "batches": CLASS_PAIRS}
    data = InMemoryImages(*toy_images(), None)
    train(tiny_spec, data, tmp_path / "hm.pt", tmp_path / "hm.ckpt", "cpu")
    batch_size = tiny_spec["training"]["batch_size"]
    assert anchors == [batch_size // 2] * (tiny_spec["training"]["epochs"] * 4)
