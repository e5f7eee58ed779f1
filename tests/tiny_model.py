"""The tiny test CNN: one recipe for the session fixture (`tiny_model`) and for the checked-in
ONNX and TFLite fixtures (`tools/make_test_models.py`). Needs Keras."""

from __future__ import annotations

from pathlib import Path


def train_tiny_model(path: Path) -> Path:
    """Trains a tiny CNN (raw 0-255 input, rescaled inside) a few epochs on seeded synthetic
    faces and saves it as `path` (a .keras file) with its metadata sidecar.

    Returns:
        `path`.
    """
    import keras
    from keras import layers

    from edge_runtime.model_files.keras_file import save_keras_file
    from edge_runtime.preprocess import InputSpec, gray48_to_input
    from tests.synthetic import synthetic_split

    keras.utils.set_random_seed(0)
    spec = InputSpec(scale=1.0)
    images, labels = synthetic_split(40, seed=3)
    model = keras.Sequential(
        [
            keras.Input((48, 48, 1)),
            layers.Rescaling(1 / 255.0),
            layers.Conv2D(8, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.8),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(7, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(gray48_to_input(images, spec), labels, epochs=25, batch_size=32, verbose=0)
    save_keras_file(model, path, "tiny", spec)
    return path
