"""Padding and length bucketing: ``pad``, ``SequenceDataset`` and its use by the Trainer."""

import math

import pytest
import torch

from rnnkit.data.batching import SequenceDataset, pad
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.tagger import SequenceTagger
from rnnkit.training import Trainer
from rnnkit.training.batches import epoch_batches, fetch


def ids(*lengths, start=1):
    """Token-id sequences of the given lengths, each filled with a distinct nonzero id."""
    return [torch.full((n,), start + i, dtype=torch.long) for i, n in enumerate(lengths)]


def skewed_dataset(count=400, seed=1, **options):
    """Many short sequences and a long tail: lengths 1..60, mostly short."""
    generator = torch.Generator().manual_seed(seed)
    lengths = (torch.rand(count, generator=generator) ** 3 * 59 + 1).long().tolist()
    target = torch.randint(0, 2, (count,), generator=generator)
    return SequenceDataset(ids(*lengths), target, **options)


# -- pad ------------------------------------------------------------------------------------------


def test_pad_shapes_values_and_padding():
    a = torch.arange(6.0).view(3, 2)
    b = torch.arange(10.0, 15.0).view(5, 1)
    out = pad([a, b], value=-7.0)
    assert out.shape == (2, 5, 2)
    assert out.dtype == a.dtype
    torch.testing.assert_close(out[0, :3, :2], a)
    torch.testing.assert_close(out[1, :5, :1], b)
    assert (out[0, 3:] == -7).all()
    assert (out[1, :, 1:] == -7).all()
    # Exactly the copied values differ from the pad value.
    assert int((out != -7).sum()) == a.numel() + b.numel()


def test_pad_one_dimensional_and_default_value():
    out = pad([torch.tensor([4, 5]), torch.tensor([6, 7, 8, 9]), torch.tensor([1])])
    expected = torch.tensor([[4, 5, 0, 0], [6, 7, 8, 9], [1, 0, 0, 0]])
    assert torch.equal(out, expected)
    assert out.dtype == torch.long


def test_pad_errors():
    with pytest.raises(ValueError, match=r"ranks \[1, 2\]"):
        pad([torch.zeros(3), torch.zeros(3, 2)])
    with pytest.raises(ValueError, match="at least one"):
        pad([])


# -- SequenceDataset: validation ------------------------------------------------------------------


def test_validation_mismatched_field_lengths_names_the_sequence():
    words = ids(3, 4, 2)
    chars = [torch.ones(3, 5, dtype=torch.long), torch.ones(4, 5, dtype=torch.long)]
    chars.append(torch.ones(7, 5, dtype=torch.long))  # sequence 2: 7 steps, words say 2
    with pytest.raises(ValueError, match=r"sequence 2 has 2 steps in inputs field 0 but 7"):
        SequenceDataset((words, chars), torch.tensor([0, 1, 0]))


def test_validation_field_count_mismatch():
    with pytest.raises(ValueError, match=r"field 1 has 2 sequences, field 0 has 3"):
        SequenceDataset((ids(1, 2, 3), ids(1, 2)))


def test_validation_empty_sequence_names_the_sequence():
    sequences = ids(3, 2, 4)
    sequences.insert(3, torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"sequence 3 is empty"):
        SequenceDataset(sequences, [0, 1, 0, 1])


def test_validation_target_count():
    with pytest.raises(ValueError, match=r"target has 2 entries for 3 sequences"):
        SequenceDataset(ids(1, 2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"target has 4 entries for 3 sequences"):
        SequenceDataset(ids(1, 2, 3), [0, 1, 1, 0])


def test_validation_per_step_target_length_names_the_sequence():
    tags = [torch.zeros(2, dtype=torch.long), torch.zeros(5, dtype=torch.long)]
    with pytest.raises(ValueError, match=r"sequence 1 has 4 steps but 5 targets"):
        SequenceDataset(ids(2, 4), tags)


def test_validation_inputs_and_pool():
    with pytest.raises(ValueError, match="non-empty list"):
        SequenceDataset([])
    # A 0-d tensor in a later field is named.
    with pytest.raises(TypeError, match="field 1, sequence 1 is not a sequence tensor"):
        SequenceDataset((ids(2, 1), [torch.ones(2), torch.tensor(3.0)]))
    for pool in (0, True, 1.5):
        with pytest.raises(ValueError, match="pool="):
            SequenceDataset(ids(1, 2), pool=pool)


def test_validation_names_a_scalar_in_the_first_field():
    with pytest.raises(TypeError, match="field 0, sequence 1 is not a sequence tensor"):
        SequenceDataset([torch.ones(2), torch.tensor(3.0)])


def test_a_list_of_scalar_class_tensors_is_one_class_per_sequence():
    data = SequenceDataset(ids(2, 3), [torch.tensor(1), torch.tensor(0)])
    assert data.batch(torch.tensor([1, 0]))[1].tolist() == [0, 1]


# -- SequenceDataset: batches ---------------------------------------------------------------------


def test_batch_pads_inputs_and_keeps_lengths_and_target():
    data = SequenceDataset(ids(2, 5, 3), [1, 0, 2], pad_value=9)
    assert len(data) == 3
    inputs, target, lengths = data.batch(torch.tensor([2, 0]))
    assert torch.equal(inputs, torch.tensor([[3, 3, 3], [1, 1, 9]]))
    assert torch.equal(target, torch.tensor([2, 1]))
    assert torch.equal(lengths, torch.tensor([3, 2]))
    # One item is a batch of one, unpadded.
    inputs, target, lengths = data[1]
    assert torch.equal(inputs, torch.full((1, 5), 2))
    assert target.tolist() == [0] and lengths.tolist() == [5]


def test_batch_per_step_target_uses_target_pad():
    tags = [torch.tensor([1, 2]), torch.tensor([3, 4, 5, 6])]
    data = SequenceDataset(ids(2, 4), tags, target_pad=-100)
    inputs, target, lengths = data.batch(torch.tensor([0, 1]))
    assert torch.equal(target, torch.tensor([[1, 2, -100, -100], [3, 4, 5, 6]]))
    assert torch.equal(inputs, torch.tensor([[1, 1, 0, 0], [2, 2, 2, 2]]))
    assert lengths.tolist() == [2, 4]


def test_batch_without_target():
    inputs, target, lengths = SequenceDataset(ids(3, 1)).batch(torch.tensor([1, 0]))
    assert target is None
    assert inputs.shape == (2, 3) and lengths.tolist() == [1, 3]


def test_batch_features_sequences():
    seqs = [torch.randn(4, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)]
    inputs, _, lengths = SequenceDataset(seqs, [0, 1]).batch(torch.tensor([1, 0]))
    assert inputs.shape == (2, 4, 3) and inputs.dtype == torch.float64
    torch.testing.assert_close(inputs[0, :2], seqs[1])
    assert (inputs[0, 2:] == 0).all()
    assert lengths.tolist() == [2, 4]


def test_batch_multi_field_words_and_chars():
    words = [torch.tensor([5, 6]), torch.tensor([7, 8, 9])]
    chars = [
        torch.tensor([[1, 2, 0], [3, 0, 0]]),  # (T=2, W=3)
        torch.tensor([[4, 0], [5, 6], [7, 0]]),  # (T=3, W=2)
    ]
    data = SequenceDataset((words, chars), torch.tensor([1, 0]))
    (w, c), target, lengths = data.batch(torch.tensor([0, 1]))
    assert torch.equal(w, torch.tensor([[5, 6, 0], [7, 8, 9]]))
    assert c.shape == (2, 3, 3)
    assert torch.equal(c[0, :2], chars[0])
    assert (c[0, 2] == 0).all()
    assert torch.equal(c[1, :, :2], chars[1])
    assert (c[1, :, 2] == 0).all()
    assert target.tolist() == [1, 0] and lengths.tolist() == [2, 3]


# -- SequenceDataset: epoch_batches ---------------------------------------------------------------


@pytest.mark.parametrize(("count", "batch_size", "pool"), [(103, 8, 3), (96, 8, 50), (5, 8, 2)])
def test_shuffled_batches_are_a_partition_full_but_the_last(count, batch_size, pool):
    data = skewed_dataset(count, pool=pool)
    batches = data.epoch_batches(batch_size, seed=3, epoch=1, shuffle=True)
    flat = torch.cat(batches)
    assert sorted(flat.tolist()) == list(range(count))  # each index exactly once
    assert len(batches) == math.ceil(count / batch_size)
    assert all(len(b) == batch_size for b in batches[:-1])
    assert len(batches[-1]) == (count % batch_size or batch_size)


def test_shuffled_batches_are_deterministic_per_seed_and_epoch():
    data = skewed_dataset(200, pool=4)

    def draw(seed, epoch):
        return [b.tolist() for b in data.epoch_batches(16, seed, epoch, shuffle=True)]

    assert draw(0, 1) == draw(0, 1)
    assert draw(0, 1) != draw(0, 2)
    assert draw(0, 1) != draw(1, 1)
    # Through the trainer's entry point too.
    assert [b.tolist() for b in epoch_batches(data, 16, 0, 1, True)] == draw(0, 1)


def test_shuffled_batches_group_similar_lengths():
    """Bucketed batches waste far less on padding than random batches of the same size."""
    data = skewed_dataset(800, pool=10)
    batch_size = 16

    def mean_spread(batches):
        return sum(float(data.lengths[b].max() - data.lengths[b].min()) for b in batches) / len(
            batches
        )

    bucketed = mean_spread(data.epoch_batches(batch_size, seed=0, epoch=1, shuffle=True))
    generator = torch.Generator().manual_seed(0)
    random = mean_spread(list(torch.randperm(len(data), generator=generator).split(batch_size)))
    assert random > 20
    assert bucketed < random / 5
    # Padding fraction too: the bucketed epoch pads far less.
    batches = data.epoch_batches(batch_size, seed=0, epoch=1, shuffle=True)
    padded = sum(len(b) * int(data.lengths[b].max()) for b in batches)
    assert padded < 1.5 * int(data.lengths.sum())


def test_unshuffled_batches_are_sorted_longest_first():
    data = SequenceDataset(ids(3, 7, 1, 7, 4, 2, 5), torch.zeros(7, dtype=torch.long))
    batches = data.epoch_batches(3, seed=0, epoch=0, shuffle=False)
    assert [b.tolist() for b in batches] == [[1, 3, 6], [4, 0, 5], [2]]  # stable among ties
    lengths = data.lengths[torch.cat(batches)]
    assert torch.equal(lengths, torch.sort(lengths, descending=True).values)


# -- the Trainer with a SequenceDataset -----------------------------------------------------------


class CountingDataset(SequenceDataset):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sizes = []
        self.epoch_calls = []

    def batch(self, indices):
        self.batch_sizes.append(len(indices))
        return super().batch(indices)

    def epoch_batches(self, batch_size, seed, epoch, shuffle):
        self.epoch_calls.append((batch_size, seed, epoch, shuffle))
        return super().epoch_batches(batch_size, seed, epoch, shuffle)


def test_trainer_fits_a_classifier_on_a_sequence_dataset():
    generator = torch.Generator().manual_seed(0)
    count = 18
    lengths = torch.randint(1, 9, (count,), generator=generator).tolist()
    sequences = [torch.randint(1, 10, (n,), generator=generator) for n in lengths]
    target = torch.tensor([int((s == 3).any()) for s in sequences])
    train = CountingDataset(sequences, target, pool=2)
    val = CountingDataset(sequences[:6], target[:6])
    model = SequenceClassifier(
        2, vocab_size=10, embedding_dim=4, hidden_size=5, cell="gru", pooling="mean"
    )
    trainer = Trainer(epochs=2, batch_size=4, loss="cross_entropy", progress="none", seed=5)
    history = trainer.fit(model, train, val=val)
    assert len(history) == 2
    assert all(math.isfinite(row["loss"]) and math.isfinite(row["val_loss"]) for row in history)
    assert len(trainer.steps) == math.ceil(count / 4) * 2
    # The dataset drew each epoch's batches and collated them (one probe batch of 1 first).
    assert train.epoch_calls == [(4, 5, 1, True), (4, 5, 2, True)]
    assert train.batch_sizes[0] == 1
    assert sorted(train.batch_sizes[1:]) == sorted([4] * 8 + [2] * 2)
    assert val.epoch_calls[0] == (4, 5, 0, False)
    # The val loss is the mean over the val set, whatever the padding of its batches.
    model.eval()
    with torch.no_grad():
        inputs, y, lens = fetch(val, torch.arange(6))
        expected = torch.nn.functional.cross_entropy(model(inputs, lengths=lens), y).item()
    assert history[-1]["val_loss"] == pytest.approx(expected, rel=1e-5)


def test_trainer_fits_a_tagger_on_words_and_chars():
    """Two input fields and per-step targets padded with -100: the val loss is the mean
    cross-entropy over the real tokens only."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 7, (10,), generator=generator).tolist()
    words = [torch.randint(1, 9, (n,), generator=generator) for n in lengths]
    chars = [torch.randint(1, 5, (n, 3), generator=generator) for n in lengths]
    tags = [torch.randint(0, 3, (n,), generator=generator) for n in lengths]
    data = SequenceDataset((words, chars), tags, target_pad=-100)
    torch.manual_seed(0)
    model = SequenceTagger(
        9,
        3,
        embedding_dim=3,
        char_vocab_size=5,
        char_embedding_dim=2,
        char_hidden_size=2,
        hidden_size=3,
        dropout=0.0,
        crf=False,
    )
    trainer = Trainer(epochs=2, batch_size=4, loss="cross_entropy", progress="none")
    history = trainer.fit(model, data, val=data)
    assert len(trainer.steps) == 6
    model.eval()
    with torch.no_grad():
        total = sum(
            model(w[None], c[None], tags=t[None]).item()
            for w, c, t in zip(words, chars, tags, strict=True)
        )
    assert history[-1]["val_loss"] == pytest.approx(total / sum(lengths), rel=1e-5)


def test_a_dataset_with_a_lone_batch_attribute_is_collated_as_usual():
    from torch.utils.data import Dataset

    from rnnkit.training.batches import fetch

    class Items(Dataset):
        batch = 4  # an attribute that happens to share the name

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.tensor([float(i)]), torch.tensor([float(i)])

    x, _ = fetch(Items(), torch.tensor([0, 2]))
    assert x.tolist() == [[0.0], [2.0]]
