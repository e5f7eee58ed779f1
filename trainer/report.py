"""The run's pictures: learning curves (the seed's plot.png) and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Runs on headless training boxes; never opens a window.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edge_runtime.labels import LABELS  # noqa: E402
from edge_runtime.outputs.atomic import atomic_path  # noqa: E402


def plot_curves(history: list[dict], path: Path) -> None:
    """Accuracy and loss per epoch, training against validation."""
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, key, title in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        axis.plot(epochs, [row[key] for row in history], label="train")
        axis.plot(epochs, [row[f"val_{key}"] for row in history], label="validation")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    _save(figure, path)


def plot_confusion_matrix(matrix: np.ndarray, path: Path, title: str = "Confusion matrix (rows: true, normalised)") -> None:
    """Row-normalised confusion matrix with labelled axes and the share in each cell."""
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    figure, axis = plt.subplots(figsize=(7, 6))
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
    axis.set_yticks(range(len(LABELS)), LABELS)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            axis.text(
                j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", color="white" if normalised[i, j] > 0.5 else "black", fontsize=8
            )
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    _save(figure, path)


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)
