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


def build_tiny():
    """A network small enough for a one-epoch run in a second: raw pixels in, 7 probabilities out."""
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x), name="tiny")
