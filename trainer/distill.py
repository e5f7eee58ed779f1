"""Knowledge distillation: the edge network learns from the averaged predictions of larger or
several trained networks (the teachers) as well as from the labels.

FER-2013's labels are noisy (human agreement is about 65%), and a teacher's soft targets
say how much a face looks like each emotion, which a small network learns from better than
from one hard label. The training model outputs the student's probabilities and the
teachers' side by side; `DistillationLoss` and `student_accuracy` split them again. Only
the student is saved as model.keras.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from edge_runtime.labels import NUM_CLASSES
from edge_runtime.model_files.keras_file import KerasFileError, load_keras_file


@keras.saving.register_keras_serializable(package="edge_emotion")
class HorizontalFlip(layers.Layer):
    """Mirrors faces left to right. Kept registered so that checkpoints of runs that
    distilled before `trainer.views` existed still load for --resume."""

    def call(self, inputs):
        return ops.flip(inputs, axis=2)


@keras.saving.register_keras_serializable(package="edge_emotion")
class DistillationLoss(keras.losses.Loss):
    """(1 - weight) * cross-entropy with the labels + weight * T^2 * KL(teacher_T || student_T).

    y_pred holds the student's probabilities in its first NUM_CLASSES columns and the
    teachers' in the rest; with `teacher_in_labels` (targets saved by an earlier run,
    `trainer.targets`) y_true holds the labels and then the teachers' probabilities instead.
    Probabilities are turned into temperature-T distributions through their logarithms,
    which equal the logits up to a constant.
    """

    def __init__(
        self,
        weight: float = 0.7,
        temperature: float = 2.0,
        label_smoothing: float = 0.0,
        teacher_in_labels: bool = False,
        name="distillation",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.weight = weight
        self.temperature = temperature
        self.label_smoothing = label_smoothing
        self.teacher_in_labels = teacher_in_labels

    def call(self, y_true, y_pred):
        student = y_pred[:, :NUM_CLASSES]
        teacher = y_true[:, NUM_CLASSES:] if self.teacher_in_labels else y_pred[:, NUM_CLASSES:]
        labels = y_true[:, :NUM_CLASSES]
        hard = keras.losses.categorical_crossentropy(labels, student, label_smoothing=self.label_smoothing)
        eps = 1e-7
        t = self.temperature
        soft_teacher = ops.softmax(ops.log(teacher + eps) / t, axis=-1)
        log_soft_student = ops.log_softmax(ops.log(student + eps) / t, axis=-1)
        kl = ops.sum(soft_teacher * (ops.log(soft_teacher + eps) - log_soft_student), axis=-1)
        return (1.0 - self.weight) * hard + self.weight * (t * t) * kl

    def get_config(self):
        return {
            **super().get_config(),
            "weight": self.weight,
            "temperature": self.temperature,
            "label_smoothing": self.label_smoothing,
            "teacher_in_labels": self.teacher_in_labels,
        }


@keras.saving.register_keras_serializable(package="edge_emotion")
def student_accuracy(y_true, y_pred):
    """Top-1 accuracy of the student's columns against the labels' (logged as accuracy / val_accuracy)."""
    return keras.metrics.categorical_accuracy(y_true[:, :NUM_CLASSES], y_pred[:, :NUM_CLASSES])


student_accuracy.__name__ = "accuracy"


def build_teacher_ensemble(paths: list[str], input_shape: tuple[int, ...], views: str = "flip") -> keras.Model:
    """One frozen model that averages every teacher's probabilities over the test-time views
    of each face (`trainer.views.VIEWS`: the face and its mirror by default).

    Raises:
        ValueError: a teacher that cannot be loaded or does not output NUM_CLASSES probabilities.
    """
    from trainer.view_layers import StackedViews, ViewMean
    from trainer.views import VIEWS

    inputs = keras.Input(input_shape, name="face")
    stacked = StackedViews(views, name="views")(inputs)
    outputs = []
    for index, path in enumerate(paths):
        try:
            loaded = load_keras_file(path)
        except KerasFileError as error:
            raise ValueError(f"{path}: cannot load the teacher model ({error.reason})") from None
        if tuple(loaded.output_shape[1:]) != (NUM_CLASSES,) or tuple(loaded.input_shape[1:]) != tuple(input_shape):
            raise ValueError(
                f"{path}: the teacher maps {loaded.input_shape[1:]} to {loaded.output_shape[1:]}; "
                f"expected {tuple(input_shape)} faces to {NUM_CLASSES} probabilities"
            )
        # A fresh wrapper gives each teacher a unique name inside the training model.
        teacher = keras.Model(loaded.input, loaded.output, name=f"teacher_{index}")
        teacher.trainable = False
        outputs.append(teacher(stacked, training=False))
    averaged = outputs[0] if len(outputs) == 1 else layers.Average(name="teacher_mean")(outputs)
    ensemble = keras.Model(inputs, ViewMean(VIEWS[views].count, name="view_mean")(averaged), name="teachers")
    ensemble.trainable = False
    return ensemble
