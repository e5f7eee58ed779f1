"""Distillation, random erasing, the wider network and the --preset recipes of edge-train."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

keras = pytest.importorskip("keras")

from tests.training_helpers import interrupted_after_each_epoch  # noqa: E402
from trainer import train as train_module  # noqa: E402
from trainer.augment import build_augmenter  # noqa: E402
from trainer.cli import app  # noqa: E402
from trainer.config import PRESETS, ConfigError, make_config  # noqa: E402
from trainer.distill import DistillationLoss, build_teacher_ensemble, student_accuracy  # noqa: E402
from trainer.models import ARCHITECTURES  # noqa: E402
from trainer.train import TrainingError, train  # noqa: E402

runner = CliRunner()


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_distillation_loss_matches_its_formula():
    rng = np.random.default_rng(0)
    student, teacher = _softmax(rng.normal(size=(5, 7))), _softmax(rng.normal(size=(5, 7)))
    labels = np.eye(7)[rng.integers(0, 7, 5)]
    weight, temperature = 0.7, 2.0
    loss = DistillationLoss(weight, temperature)(labels, np.concatenate([student, teacher], axis=1).astype("float32"))

    hard = -(labels * np.log(student)).sum(axis=1)
    soft_teacher = _softmax(np.log(teacher), temperature)
    soft_student = _softmax(np.log(student), temperature)
    kl = (soft_teacher * (np.log(soft_teacher) - np.log(soft_student))).sum(axis=1)
    expected = ((1 - weight) * hard + weight * temperature**2 * kl).mean()
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_distillation_loss_is_plain_cross_entropy_when_student_equals_teacher():
    probabilities = _softmax(np.random.default_rng(1).normal(size=(4, 7))).astype("float32")
    labels = np.eye(7)[[0, 3, 5, 6]]
    both = np.concatenate([probabilities, probabilities], axis=1)
    distilled = float(DistillationLoss(0.5, 3.0)(labels, both))
    cross_entropy = float(keras.losses.CategoricalCrossentropy()(labels, probabilities))
    assert distilled == pytest.approx(0.5 * cross_entropy, rel=1e-4)


def test_student_accuracy_reads_only_the_student_columns():
    labels = np.eye(7)[[0, 1]]
    student = np.eye(7)[[0, 2]]  # one right, one wrong
    teacher = np.eye(7)[[0, 1]]  # both right: must not count
    values = keras.ops.convert_to_numpy(student_accuracy(labels, np.concatenate([student, teacher], axis=1)))
    assert values.tolist() == [1.0, 0.0]


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    from edge_runtime.model_files.keras_file import save_keras_file

    keras.utils.set_random_seed(3)
    model = ARCHITECTURES["edge"].build()
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    save_keras_file(model, path, "edge", ARCHITECTURES["edge"].input_spec)
    return path


def test_teacher_ensemble_averages_both_views_and_is_frozen(teacher_path, tmp_path):
    keras.utils.set_random_seed(4)
    other_path = tmp_path / "other.keras"
    ARCHITECTURES["edge"].build().save(other_path)
    ensemble = build_teacher_ensemble([str(teacher_path), str(other_path)], (48, 48, 1))
    assert not ensemble.trainable_weights

    faces = np.random.default_rng(5).uniform(0, 255, (3, 48, 48, 1)).astype("float32")
    views = []
    for path in (teacher_path, other_path):
        model = keras.models.load_model(path)
        views += [model.predict(faces, verbose=0), model.predict(faces[:, :, ::-1], verbose=0)]
    np.testing.assert_allclose(ensemble.predict(faces, verbose=0), np.mean(views, axis=0), atol=1e-5)


def test_bad_teachers_are_named(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match=f"^{junk}: cannot load the teacher model \\(not a complete .keras zip archive"):
        build_teacher_ensemble([str(junk)], (48, 48, 1))
    wrong = tmp_path / "wrong.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]).save(wrong)
    with pytest.raises(ValueError, match=r"expected \(48, 48, 1\) faces to 7 probabilities"):
        build_teacher_ensemble([str(wrong)], (48, 48, 1))


def test_distilled_run_saves_only_the_student_and_resumes(tmp_path, fer_folder, teacher_path, monkeypatch):
    out = tmp_path / "run"
    config = make_config(
        str(fer_folder),
        str(out),
        "edge",
        epochs=2,
        batch_size=64,
        erasing=0.5,
        teachers=(str(teacher_path),),
        cache_dir=str(tmp_path / "cache"),
    )
    original = train_module._EpochCheckpoint

    monkeypatch.setattr(train_module, "_EpochCheckpoint", interrupted_after_each_epoch(original))
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(train_module, "_EpochCheckpoint", original)
    # The checkpoint holds the teachers, the custom loss and the augmentation: it must load back.
    metrics = train(config, resume=True)

    state = json.loads((out / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [1, 2]
    assert all(0.0 <= row["val_accuracy"] <= 1.0 for row in state["history"])
    student = keras.models.load_model(out / "model.keras")
    assert student.name == "edge_vgg" and student.count_params() == ARCHITECTURES["edge"].build().count_params()
    assert student.output_shape == (None, 7)
    assert metrics["epochs_run"] == 2
    assert json.loads((out / "config.json").read_text())["teachers"] == [str(teacher_path)]


def test_missing_teacher_file_is_a_training_error(tmp_path, fer_folder):
    config = make_config(
        str(fer_folder), str(tmp_path / "run"), "edge", epochs=1, teachers=(str(tmp_path / "gone.keras"),), cache_dir=str(tmp_path / "c")
    )
    with pytest.raises(TrainingError, match="gone.keras: cannot load the teacher model"):
        train(config)


def test_random_erasing_is_added_only_when_asked():
    names = [type(layer).__name__ for layer in build_augmenter(0).layers]
    assert "RandomErasing" not in names
    with_erasing = build_augmenter(0, erasing=0.5)
    assert type(with_erasing.layers[-1]).__name__ == "RandomErasing"
    faces = np.full((16, 48, 48, 1), 128.0, "float32")
    erased = keras.ops.convert_to_numpy(with_erasing.layers[-1](faces, training=True))
    assert erased.shape == faces.shape and (erased != 128.0).any()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(with_erasing(faces, training=False)), faces)


def test_wide_network_stays_inside_the_edge_budget():
    model = ARCHITECTURES["edge-wide"].build()
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    # About 1.8M parameters: an int8 file under 3 MB.
    assert 1_700_000 < model.count_params() < 1_850_000


def test_presets_are_complete_recipes(tmp_path):
    config = make_config("d", "o", preset="edge-v2", teachers=("a.keras", "b.keras"))
    assert (config.arch, config.epochs, config.batch_size, config.erasing) == ("edge-wide", 120, 128, 0.25)
    assert (config.distill_weight, config.distill_temperature, config.patience) == (0.7, 2.0, 0)
    teacher = make_config("d", "o", preset="teacher", epochs=60)
    assert (teacher.arch, teacher.epochs, teacher.erasing) == ("edge", 60, 0.5)
    seed = make_config("d", "o", preset="seed")
    assert seed.optimizer == "adam" and seed.epochs == 60
    assert make_config("d", "o", preset="edge-v1").epochs == 40
    assert set(PRESETS) == {"seed", "edge-v1", "teacher", "teacher-wide", "edge-v2", "teacher-vgg", "teacher-resnet", "edge-v3"}


def test_preset_errors(tmp_path):
    with pytest.raises(ConfigError, match="--preset edge-v2 distils: name its teachers with --teacher"):
        make_config("d", "o", preset="edge-v2")
    with pytest.raises(ConfigError, match="--arch seed contradicts --preset teacher, which trains edge"):
        make_config("d", "o", arch="seed", preset="teacher")
    result = runner.invoke(app, ["--data", str(tmp_path), "--out", str(tmp_path / "run"), "--preset", "edge-v2"])
    assert result.exit_code == 2
    assert result.output.strip() == "edge-train: error: --preset edge-v2 distils: name its teachers with --teacher (see MODEL_CARD.md)"
    assert not (tmp_path / "run").exists()
    result = runner.invoke(app, ["--data", "x", "--out", "y", "--preset", "bigger"])
    assert result.exit_code == 2 and "'bigger' is not one of" in result.output
