"""The architecture-search split: a held-out set carved out of the *training* split.

The paper (App. A.1) trains every child on 45,000 CIFAR-10 training images and rewards
the controller with accuracy on the other 5,000, "a random subset of 5,000 images from
the training set". The test split is never read during search, so the final test
accuracy of the chosen architecture is not biased by the thousands of comparisons made
on the held-out set.
"""

from __future__ import annotations

from nasnet_keras.data.catalog import get_spec
from nasnet_keras.checks import check_int
from nasnet_keras.data.sources import load


def search_split(
    name: str,
    validation_size: int = 5000,
    subset: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    *,
    download: bool | None = None,
    shuffle_buffer: int = 10_000,
):
    """(train, validation) unbatched datasets, disjoint, both from the training split.

    Args:
        name: dataset name (see `nasnet_keras.data.CATALOG`).
        validation_size: held-out examples (paper: 5,000 of CIFAR-10's 50,000).
        subset: at most this many *training* examples (tiny proxy runs); only the first
            `validation_size + subset` examples of the split are then read at all.
            None uses the rest of the split.
        seed: fixes which examples are held out. The same seed gives the same split in
            every process, which a distributed search (several workers) requires.
        shuffle_buffer: the held-out set is drawn after a seeded shuffle with this
            buffer (the whole split when it is smaller), so it is a random subset rather
            than the first files.
    """
    spec = get_spec(name)
    if "train" not in spec.splits:
        raise ValueError(f"Dataset {name!r} has no 'train' split to search on. Splits: {', '.join(spec.splits)}")
    total = spec.splits["train"]
    check_int("validation_size", validation_size, minimum=1, maximum=total - 1,
              hint=f" (the {name} training split has {total} examples)")
    check_int("subset", subset, minimum=1, allow_none=True)
    if subset is not None:
        if validation_size + subset > total:
            raise ValueError(
                f"`validation_size` + `subset` = {validation_size + subset} exceeds the {total} training "
                f"examples of {name}. Received: validation_size={validation_size}, subset={subset}"
            )
    count = total if subset is None else validation_size + subset
    split = "train" if subset is None else f"train[:{count}]"
    ds = load(name, split, data_dir, download=download)
    # A fixed seed and no reshuffling make the order identical for every iterator, so
    # `take` and `skip` below see the same permutation and never overlap.
    ds = ds.shuffle(min(shuffle_buffer, count), seed=seed, reshuffle_each_iteration=False)
    validation = ds.take(validation_size)
    train = ds.skip(validation_size)
    return train, validation
