"""How the trainer cuts an epoch into batches (robdml.data.batches): random, or RobRank's SPC-2
class pairs, which any defense may ask for and the trainer then uses."""

from collections import Counter

import pytest
import torch

from conftest import toy_images
from robdml.data.batches import CLASS_PAIRS, RANDOM, epoch_batches
from robdml.data.datasets import InMemoryImages
from robdml.defenses import DEFENSES
from robdml.runtime import generator
from robdml.training import train

# class sizes 1..7 (two singleton classes) and a class of 20: 2 + 2 + 3 + 4 + 5 + 6 + 7 + 20 = 49
SIZES = [1, 2, 3, 4, 5, 6, 7, 20, 1]
LABELS = torch.arange(len(SIZES)).repeat_interleave(torch.tensor(SIZES))
SINGLETONS = {index for index, label in enumerate(LABELS.tolist()) if SIZES[label] == 1}


def pairs(seed: int = 0, epoch: int = 0, batch_size: int = 8, labels=LABELS) -> list[list]:
    return epoch_batches(CLASS_PAIRS, labels, batch_size, generator(seed, epoch))


def indices(batch: list) -> torch.Tensor:
    return torch.tensor([sample for sample, _ in batch])


def test_class_pair_batches_are_full_batches_of_pairs_of_two_images_of_one_class():
    for epoch in range(20):
        batches = pairs(epoch=epoch)
        assert len(batches) == len(LABELS) // 8  # as many as random batches
        for batch in batches:
            assert len(batch) == 8
            index = indices(batch)
            anchors, partners = index[0::2], index[1::2]
            assert torch.equal(LABELS[anchors], LABELS[partners])
            assert (anchors != partners).all()  # another image, not a second view of one


def test_singleton_classes_are_never_drawn_and_anchors_do_not_repeat_within_an_epoch():
    for epoch in range(50):
        batches = pairs(epoch=epoch)
        drawn = {sample for batch in batches for sample, _ in batch}
        assert not drawn & SINGLETONS
        anchors = [sample for batch in batches for sample, _ in batch[0::2]]
        assert len(anchors) == len(set(anchors)) == len(LABELS) // 8 * 4


def test_the_partner_is_uniform_over_the_other_images_of_the_class():
    """Class 3 has images 6..9: an anchor's partner is each of the three others about a third
    of the time, never itself."""
    partners = Counter()
    for epoch in range(400):
        for batch in pairs(epoch=epoch):
            for (anchor, _), (partner, _) in zip(batch[0::2], batch[1::2], strict=True):
                if anchor == 6:
                    partners[partner] += 1
    assert set(partners) == {7, 8, 9}
    total = sum(partners.values())
    assert total > 150
    for count in partners.values():
        assert abs(count / total - 1 / 3) < 0.1


def test_batches_are_fixed_by_the_generator_and_differ_across_epochs_and_seeds():
    assert pairs(seed=0, epoch=3) == pairs(seed=0, epoch=3)
    assert pairs(seed=0, epoch=3) != pairs(seed=0, epoch=4)
    assert pairs(seed=0, epoch=3) != pairs(seed=1, epoch=3)


def test_every_drawn_image_has_its_own_augmentation_seed():
    for batch in pairs():
        seeds = [seed for _, seed in batch]
        assert len(set(seeds)) == len(seeds)


def test_an_epoch_has_no_more_batches_than_the_pairable_images_fill():
    labels = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7, 8])  # two pairable images of ten
    (batch,) = pairs(batch_size=4, labels=labels)  # random: 10 // 4 = 2 batches
    assert sorted(sample for sample, _ in batch) == [0, 0, 1, 1]
    assert pairs(batch_size=4, labels=torch.arange(10)) == []  # nothing to pair


def test_class_pairs_need_an_even_batch_size_and_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="even batch_size"):
        pairs(batch_size=7)
    with pytest.raises(ValueError, match="unknown batch sampling 'spc2'"):
        epoch_batches("spc2", LABELS, 8, generator(0, 0))


def test_random_batches_are_what_they_were_before_the_option():
    """A defense that names no `batches` trains on the very batches it did (its model files
    keep their bytes): a shuffle, then a seed per sample, in that order of draws."""
    reference = generator(0, 2)
    order = torch.randperm(len(LABELS), generator=reference)
    seeds = torch.randint(0, 2**62, (len(LABELS),), generator=reference)
    keys = list(zip(order.tolist(), seeds.tolist(), strict=True))
    expected = [keys[start : start + 8] for start in range(0, len(LABELS) - 8 + 1, 8)]
    assert epoch_batches(RANDOM, LABELS, 8, generator(0, 2)) == expected


@pytest.mark.parametrize("batches", [None, CLASS_PAIRS])
def test_the_trainer_gives_a_defense_the_batches_it_asks_for(
    tmp_path, tiny_spec, monkeypatch, batches
):
    """Any defense: `batches: class_pairs` makes every training batch pairs of one class;
    without it (random) some batch is not."""
    seen = []
    vanilla = DEFENSES["vanilla"]

    class Recording(vanilla):
        def loss(self, step, images, labels, mask):
            seen.append(labels.clone())
            return super().loss(step, images, labels, mask)

    monkeypatch.setitem(DEFENSES, "vanilla", Recording)
    if batches is not None:
        tiny_spec["defense"] = {"method": "vanilla", "batches": batches}
    data = InMemoryImages(*toy_images(), None)
    train(tiny_spec, data, tmp_path / "model.pt", tmp_path / "model.ckpt", "cpu")
    paired = [torch.equal(labels[0::2], labels[1::2]) for labels in seen]
    assert len(seen) == tiny_spec["training"]["epochs"] * 4
    assert all(paired) if batches == CLASS_PAIRS else not all(paired)
