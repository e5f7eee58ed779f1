"""Training batches made in Python, for the runs whose batches need more than shuffling:
mixup and cutmix (`trainer.mixing`), and data-parallel runs (`trainer.distributed`), whose
batches must split evenly over the devices and, with several processes, be cut into one
slice per process.

Every epoch's order comes from (seed, epoch) and is the same in every process; each global
batch is that order's next `batch_size` faces, and process p feeds the p-th of
`num_processes` equal slices of it. The global batches are therefore the same whatever the
number of processes, and a resumed run (from `first_epoch`) draws what an uninterrupted one
would have drawn, in whatever order Keras asks for the batches.
"""

from __future__ import annotations

import numpy as np

from trainer.mixing import mix_batch


def batch_bounds(count: int, batch_size: int, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, stop) of each batch over `count` shuffled faces; the last batch is cut down to
    a multiple of `multiple` (the devices it is split over), dropping at most multiple - 1
    faces of the epoch, or dropped when nothing is left of it."""
    bounds = []
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start) // multiple * multiple
        if size:
            bounds.append((start, start + size))
    return bounds


def training_batches(
    keras,
    faces: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    first_epoch: int = 0,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    devices: int = 1,
    process_id: int = 0,
    num_processes: int = 1,
):
    """A Keras PyDataset of this process's share of each shuffled (and mixed) global batch.

    Args:
        keras: the keras module.
        faces, labels: the whole training split (every process holds all of it).
        batch_size: the global batch (a multiple of `devices`).
        seed: the run's seed.
        first_epoch: the epoch the run starts or resumes at.
        mixup, cutmix: Beta alphas (0: off).
        devices: how many devices each global batch is split over, in all processes.
        process_id, num_processes: this process and how many feed the devices together.
    """

    class TrainingBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.bounds = batch_bounds(len(faces), batch_size, devices)
            self._start_epoch(first_epoch)

        def _start_epoch(self, epoch: int):
            self.epoch = epoch
            self.order = np.random.default_rng([seed, epoch]).permutation(len(faces))

        def __len__(self):
            return len(self.bounds)

        def __getitem__(self, index):
            start, stop = self.bounds[index]
            share = (stop - start) // num_processes
            rows = self.order[start + process_id * share : start + (process_id + 1) * share]
            rng = np.random.default_rng([seed, self.epoch, index, process_id])
            return mix_batch(faces[rows], labels[rows], rng, mixup, cutmix)

        def on_epoch_end(self):
            self._start_epoch(self.epoch + 1)

    return TrainingBatches()
