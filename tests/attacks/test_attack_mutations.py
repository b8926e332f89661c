"""Tests that pin down choices of the attack code that the broader tests in test_attacks.py do
not distinguish (issue 25): re-fitting attacks choose among restarts and rounds without the
labels and keep the least-agreeing candidate; APGD returns its best point, sign-PGD its last
iterate; APGD halves its step and restarts from its best point where progress stalls; EAT's
shared crafting batch gives each member only the samples its mask allows."""

import pytest
import torch
from attack_toys import PixelModel, params_for, tight_clusters
from defense_toys import eat, toy_batch, toy_step
from sklearn.metrics import normalized_mutual_info_score

from robdml.attacks import pgd, project
from robdml.attacks.centroids import kmeans_centroids
from robdml.attacks.pgd import APGD_MOMENTUM, apgd_checkpoints, random_start
from robdml.attacks.runner import Crafting, attack_test_set
from robdml.embedding import embed

# Label-free re-fitting attacks with several candidates to choose from: 4 rounds x 2 restarts.
REFITTING = {
    "refit": params_for("refit", steps=20, refit_every=5, restarts=2),
    "cluster_mi": params_for("mi", labels="clean_clustering", steps=20, refit_every=5, restarts=2),
}
EPS_255 = 20.0


def attack(params, labels, images=None, seed=0):
    """The one-budget record of a re-fitting attack on the tight-cluster toy."""
    images = tight_clusters()[0] if images is None else images
    return attack_test_set(PixelModel(), images, labels, params, [EPS_255], seed, 64, "cpu")[0]


@pytest.mark.parametrize("name", sorted(REFITTING))
def test_label_free_refitting_attacks_choose_their_round_without_the_labels(name):
    """Labels shuffled over the samples (same classes, same k, but a partition that disagrees
    with the clean clustering) change nothing: not the delivered images, not the chosen restart
    and round, not the recorded agreement. A runner that chose its candidate by NMI against the
    true labels instead of the attack's reference (the clean clustering) fails this: on this toy
    the shuffled labels' least-agreeing candidate is another one."""
    images, labels = tight_clusters()
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(5))]
    assert normalized_mutual_info_score(labels.numpy(), shuffled.numpy()) < 0.3
    real, other = (attack(REFITTING[name], given, images) for given in (labels, shuffled))
    assert torch.equal(real["images"], other["images"])
    assert real["chosen"] == other["chosen"]
    assert real["agreement_nmi"] == other["agreement_nmi"]


def candidates_of(params, monkeypatch):
    """(record, every delivered candidate set in the order crafted): a spy on
    `Crafting.deliver`, which the re-fitting loop calls once per restart and round."""
    delivered = []
    deliver = Crafting.deliver

    def spy(self, adversarial, eps_255):
        result = deliver(self, adversarial, eps_255)
        delivered.append(result.clone())
        return result

    monkeypatch.setattr(Crafting, "deliver", spy)
    images, labels = tight_clusters()
    record = attack(params, labels, images)
    return record, delivered, images, labels


@pytest.mark.parametrize("name", sorted(REFITTING))
def test_refitting_keeps_the_least_agreeing_candidate(name, monkeypatch):
    """Each candidate's agreement recomputed independently (the attacker's k-means of its
    embeddings, NMI against the clean clustering): the runner delivers the first candidate
    with the lowest agreement, records that agreement and its (restart, round)."""
    params = REFITTING[name]
    record, delivered, images, labels = candidates_of(params, monkeypatch)
    rounds = -(-params["steps"] // params["refit_every"])
    assert len(delivered) == params["restarts"] * rounds

    model, k, seed, n_init = PixelModel(), int(labels.unique().numel()), 0, params["kmeans_n_init"]
    reference, _ = kmeans_centroids(embed(model, images, 64, "cpu"), k, seed, n_init)
    agreements = []
    for candidate in delivered:
        assignments, _ = kmeans_centroids(embed(model, candidate, 64, "cpu"), k, seed, n_init)
        agreements.append(normalized_mutual_info_score(reference.numpy(), assignments.numpy()))
    lowest = min(range(len(agreements)), key=agreements.__getitem__)  # the first minimum
    # the toy makes the choice matter: neither the last nor the most-agreeing candidate is it
    assert lowest != len(agreements) - 1
    assert max(agreements) > agreements[lowest] + 0.01

    assert record["agreement_nmi"] == pytest.approx(agreements[lowest], abs=1e-12)
    restart, round_index = divmod(lowest, rounds)
    assert record["chosen"] == {"restart": restart, "round": round_index}
    assert torch.equal(record["images"], delivered[lowest])


def spied(function):
    """`function` (per-sample values) and the list of (points, values) it is evaluated at."""
    calls = []

    def objective(x):
        value = function(x)
        calls.append((x.detach().clone(), value.detach().clone()))
        return value

    return objective, calls


def wiggly(x):
    """Many local maxima inside the ball: ascent passes its best point and leaves it."""
    return torch.sin(60 * x).flatten(1).sum(1) + 3 * torch.sin(17 * x).flatten(1).sum(1)


# Up to 99 steps APGD's last step is a checkpoint; where the interval before it has at most 3
# steps (runs of up to 57 steps) a sample either ends on a new best point or restarts from its best
# there, so last iterate and best point coincide. Longer runs tell them apart: 80 steps (a 5-step
# last interval), 100 (`mi`) and 150 (steps after the last checkpoint).
@pytest.mark.parametrize("steps", [20, 80, 100, 150])
def test_apgd_returns_the_best_point_it_evaluated_not_its_last_iterate(steps):
    clean = torch.rand(32, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    objective, calls = spied(wiggly)
    start = torch.Generator().manual_seed(1)
    returned = pgd(objective, clean, 0.1, 0.0, steps, start, "apgd")
    points = torch.stack([x for x, _ in calls])  # [evaluations, N, ...]
    values = torch.stack([v for _, v in calls])  # [evaluations, N]
    best = values.argmax(dim=0)
    torch.testing.assert_close(wiggly(returned), values.amax(dim=0), rtol=0, atol=1e-6)
    torch.testing.assert_close(returned, points[best, torch.arange(len(clean))], rtol=0, atol=0)
    if steps >= 100:  # the toy makes it matter: samples whose last iterate is not their best
        assert (wiggly(points[-1]) < values.amax(dim=0) - 1e-5).sum() >= 4


def test_sign_pgd_returns_its_last_iterate():
    """The sign rule promises the last iterate (pgd.py): T steps are T - 1 steps and one more
    from there, even where an earlier iterate scored higher (as it does on this toy)."""
    clean = torch.rand(32, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    start = random_start(clean, 0.1, torch.Generator().manual_seed(1))
    objective, calls = spied(wiggly)
    last = pgd(objective, clean, 0.1, 0.03, 10, None, "sign", start=start)
    earlier = pgd(wiggly, clean, 0.1, 0.03, 9, None, start=start)
    torch.testing.assert_close(last, pgd(wiggly, clean, 0.1, 0.03, 1, None, start=earlier))
    values = torch.stack([v for _, v in calls])
    assert (wiggly(last) < values.amax(dim=0) - 1e-3).any()


def test_apgd_halves_the_step_and_restarts_from_the_best_point_where_progress_stalls():
    """A 1-pixel toy whose gradient always points up while its value falls (-x): every step
    fails, so every checkpoint (3, 5, 6, ... of 10 steps) halves the step eta (2 eps at first)
    and sends the iterate back to its best point, the start. Steps as in Croce & Hein:
    z = P(x_k + eta sign(grad)), x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1})),
    alpha = 1 on the first step, 0.75 after; after a restart x_k is the best point and x_{k-1}
    the iterate before the last one (as in their reference code)."""
    assert APGD_MOMENTUM == 0.75 and apgd_checkpoints(10)[:3] == [3, 5, 6]
    low, high, eps, alpha = 0.25, 0.75, 0.25, 0.75

    def falls_while_pointing_up(x):
        return (-x).detach().sum(1) + (x - x.detach()).sum(1)  # value -x, gradient +1

    objective, calls = spied(falls_while_pointing_up)
    clean = torch.full((1, 1), 0.5)
    returned = pgd(objective, clean, eps, 0.0, 10, None, "apgd", start=clean - eps)
    x4 = low + alpha * eps + (1 - alpha) * (low - high)  # step 4: eta = eps, from the start
    x5 = x4 + alpha * eps + (1 - alpha) * (x4 - low)  # no checkpoint at 4: eta kept
    x6 = low + alpha * eps / 2 + (1 - alpha) * (low - x4)  # eta = eps / 2, from the start
    x7 = low + alpha * eps / 4 + (1 - alpha) * (low - low)  # eta = eps / 4, from the start
    expected = [low, high, high, high, x4, x5, x6, x7]  # start, then steps 1 to 7
    assert [x.item() for x, _ in calls[:8]] == pytest.approx(expected, abs=1e-7)
    assert torch.equal(returned, clean - eps)  # nothing ever beat the start


def scripted(values):
    """An objective whose value at its n-th evaluation is `values[n]` (every sample alike) and
    whose gradient is +1 on even evaluations, -1 on odd ones, so the iterates swing across the
    ball; and the list of points it is evaluated at."""
    calls = []

    def objective(x):
        direction = 1.0 if len(calls) % 2 == 0 else -1.0
        calls.append(x.detach().clone())
        value = torch.full((len(x),), float(values[len(calls) - 1]))
        return value + direction * (x - x.detach()).sum(1)

    return objective, calls


def momentum_iteration(clean, eps, steps, eta):
    """Croce & Hein's update with a fixed step `eta` and no checkpoints, from `clean`, with the
    gradient signs of `scripted`: the points it evaluates, start included."""
    previous = current = clean
    points = [clean]
    for iteration in range(1, steps + 1):
        direction = 1.0 if iteration % 2 == 1 else -1.0  # the sign at the current point
        z = project(current + eta * direction, clean, eps)
        alpha = 1.0 if iteration == 1 else APGD_MOMENTUM
        step = current + alpha * (z - current) + (1 - alpha) * (current - previous)
        previous, current = current, project(step, clean, eps)
        points.append(current)
    return points


CLEAN = torch.tensor([[0.3], [0.5], [0.6]])


def test_apgd_keeps_its_step_and_never_restarts_while_every_step_improves():
    """A value that rises at every evaluation: APGD's iterates are exactly the fixed-step
    momentum iteration (eta = 2 eps throughout, no restart), and the last one is returned."""
    eps, steps = 0.25, 10
    objective, calls = scripted(range(steps + 1))
    returned = pgd(objective, CLEAN, eps, 0.0, steps, None, "apgd", start=CLEAN)
    expected = momentum_iteration(CLEAN, eps, steps, 2 * eps)
    torch.testing.assert_close(torch.stack(calls), torch.stack(expected), rtol=0, atol=1e-7)
    torch.testing.assert_close(returned, expected[-1], rtol=0, atol=1e-7)


def test_apgd_halves_a_step_that_was_kept_when_the_best_value_did_not_rise():
    """Croce & Hein's second condition: at a checkpoint where the step was not halved at the
    previous one and the best value has not risen since, halve it and restart from the best
    point, even though enough steps improved on their predecessor (6 of the 7 steps from
    checkpoint 10 to 17 of 41, each still below the best value, reached at step 10)."""
    eps, steps = 0.25, 41
    assert apgd_checkpoints(steps)[:2] == [10, 17]
    values = list(range(11)) + [0, 1, 2, 3, 4, 5, 6] + [0] * (steps - 17)
    objective, calls = scripted(values)
    pgd(objective, CLEAN, eps, 0.0, steps, None, "apgd", start=CLEAN)
    expected = momentum_iteration(CLEAN, eps, 17, 2 * eps)  # nothing stalled up to step 17
    torch.testing.assert_close(torch.stack(calls[:18]), torch.stack(expected), rtol=0, atol=1e-7)
    best, before_last = expected[10], expected[16]  # the gradient at the best point is +1
    z = project(best + eps, CLEAN, eps)  # half the step, from the best point
    step_18 = best + APGD_MOMENTUM * (z - best) + (1 - APGD_MOMENTUM) * (best - before_last)
    torch.testing.assert_close(calls[18], project(step_18, CLEAN, eps), rtol=0, atol=1e-7)


def test_apgd_keeps_its_step_when_exactly_the_success_rate_of_steps_improved():
    """Croce & Hein's first condition is strict (fewer than rho x interval successes): at the
    first checkpoint of 14 steps (step 4), 3 of 4 steps improved, which is not fewer than
    0.75 x 4, and the best value rose, so APGD goes on from its current point with its step.
    (Their reference code, `check_oscillation`, halves at <=; we follow the paper.)"""
    eps, steps = 0.25, 14
    assert apgd_checkpoints(steps)[0] == 4
    objective, calls = scripted([0, 1, 2, 3, 2.5] + [0] * steps)
    pgd(objective, CLEAN, eps, 0.0, steps, None, "apgd", start=CLEAN)
    expected = momentum_iteration(CLEAN, eps, 5, 2 * eps)  # no restart at step 4
    torch.testing.assert_close(torch.stack(calls[:6]), torch.stack(expected), rtol=0, atol=1e-7)


def record_crafting_inputs(member: torch.nn.Module) -> list[torch.Tensor]:
    """Inputs of `member`'s eval-mode forwards (crafting; the update runs in train mode)."""
    seen: list[torch.Tensor] = []
    member.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach()) if not module.training else None
    )
    return seen


def test_eat_shared_crafting_gives_each_member_only_its_allowed_samples():
    """`ensemble_pal` maximises the mean of the members' Proxy Anchor losses, each on the
    samples its mask allows: every crafting forward of member i holds exactly the samples of
    mask column i (each row within eps of its clean image), and a member whose column is empty
    is left out of the mean (no forward, no say in the batch)."""
    defense = eat(members=3, split="samples", transfer="ensemble_pal")
    images, labels = toy_batch()
    mask = defense.member_masks(labels, seed=0)
    eps = defense.params["attack"]["eps_255"] / 255
    step = toy_step(3)
    seen = [record_crafting_inputs(member) for member in step.members]
    defense.shared_adversarial(step, images, labels, mask)
    for index, forwards in enumerate(seen):
        keep = mask[:, index]
        assert forwards, f"member {index} never crafted"
        for x in forwards:
            assert x.shape[0] == keep.sum(), f"member {index} crafted on excluded samples"
            assert (x - images[keep]).abs().amax() <= eps + 1e-6

    alone = mask.clone()
    alone[:, 2] = False  # member 2 may see nothing of this batch
    step = toy_step(3)
    seen = [record_crafting_inputs(member) for member in step.members]
    crafted = defense.shared_adversarial(step, images, labels, alone)
    assert seen[0] and seen[1] and not seen[2]
    changed = toy_step(3)
    with torch.no_grad():
        changed.members[2].head.weight.add_(0.5)
    assert torch.equal(crafted, defense.shared_adversarial(changed, images, labels, alone))


def bf16_valued(x):
    """`wiggly` with its values rounded to bf16 (8 significant bits) and its exact gradient:
    what APGD sees when its objective runs under bf16 autocast."""
    exact = wiggly(x)
    return exact + (exact.detach().bfloat16().float() - exact.detach())


def test_apgd_decides_on_the_exact_values_when_given():
    """Best point and step halving follow `exact`'s values, not the rounded ones the gradient
    pass returns: the returned point is the best evaluated point by the exact values. Without
    `exact` the rounded values decide, and on this toy some samples then end elsewhere."""
    clean = torch.rand(64, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    returned, calls = {}, {}
    for mode, exact in (("exact", wiggly), ("rounded", None)):
        objective, calls[mode] = spied(bf16_valued)
        returned[mode] = pgd(
            objective, clean, 0.1, 0.0, 100, torch.Generator().manual_seed(1), "apgd", None, exact
        )
    points = torch.stack([x for x, _ in calls["exact"]])
    exact_values = wiggly(points.flatten(0, 1)).view(len(points), -1)
    best = exact_values.argmax(dim=0)
    torch.testing.assert_close(
        returned["exact"], points[best, torch.arange(len(clean))], rtol=0, atol=0
    )
    assert (wiggly(returned["rounded"]) < wiggly(returned["exact"]) - 1e-6).any()


def test_bf16_crafting_hands_apgd_an_fp32_judge(monkeypatch):
    """Under bf16 autocast the runner's APGD gets `exact`: the same objective with the model
    in fp32 (the gradient pass runs the model in bf16, its objective arithmetic in fp32);
    without autocast it gets none (the objective is already fp32)."""
    from robdml.attacks import runner
    from robdml.fast_path import FastPath

    images, labels = tight_clusters()
    width = images[0].numel()
    model = torch.nn.Sequential(PixelModel(), torch.nn.Linear(width, width))  # autocast: bf16
    outputs, seen = [], []
    model.register_forward_hook(lambda module, args, output: outputs.append(output.dtype))

    def spy(objective, clean, *args):
        exact = args[-1]
        seen.append(exact is not None)
        if exact is not None:
            outputs.clear()
            assert objective(clean).dtype == torch.float32 and outputs == [torch.bfloat16]
            assert exact(clean).dtype == torch.float32 and outputs[1:] == [torch.float32]
        return clean

    monkeypatch.setattr(runner, "pgd", spy)
    params = params_for("mi", labels="clean_clustering", steps=2, refit_every=2)
    for autocast in (True, False):
        fast_path = FastPath(torch.device("cpu"), autocast_bf16=autocast)
        attack_test_set(model, images, labels, params, [8.0], 0, 64, "cpu", fast_path)
    assert seen == [True] * (len(seen) // 2) + [False] * (len(seen) // 2) and seen[0]
