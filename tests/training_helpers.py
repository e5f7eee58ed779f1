"""Helpers for the training tests."""

from __future__ import annotations


def interrupted_after_each_epoch(make_callback):
    """Wraps trainer.train._EpochCheckpoint so the run dies (KeyboardInterrupt) right after
    an epoch has been made durable, as a killed process would."""

    def interrupting(*args, **kwargs):
        callback = make_callback(*args, **kwargs)
        finish_epoch = callback.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            finish_epoch(epoch, logs)
            raise KeyboardInterrupt

        callback.on_epoch_end = on_epoch_end
        return callback

    return interrupting
