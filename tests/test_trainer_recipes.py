"""The large-teacher recipe options of edge-train: SGD with Nesterov momentum, the plateau
schedule, mixup and cutmix, test-time views (ten-crop), crop jitter, the large networks and
their presets. Each option is checked for what it changes, at tiny scale."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

keras = pytest.importorskip("keras")

from edge_runtime.preprocess import InputSpec, gray48_to_input  # noqa: E402
from fer_data.fer2013 import load_fer2013  # noqa: E402
from tests.training_helpers import build_tiny  # noqa: E402
from trainer import epoch_batches  # noqa: E402
from trainer.augment import CROP_JITTERS, build_augmenter  # noqa: E402
from trainer.cli import app  # noqa: E402
from trainer.config import ConfigError, TrainConfig, make_config  # noqa: E402
from trainer.distill import build_teacher_ensemble  # noqa: E402
from trainer.epoch_batches import batch_bounds, training_batches  # noqa: E402
from trainer.mixing import mix_batch  # noqa: E402
from trainer.models import ARCHITECTURES, Architecture  # noqa: E402
from trainer.optimizers import build_optimizer, plateau_callback  # noqa: E402
from trainer.view_layers import StackedViews, averaged_over_views  # noqa: E402

runner = CliRunner()


def _faces(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, 48, 48, 1)).astype("float32")


# --- optimizers and schedules -------------------------------------------------------------


def test_sgd_is_nesterov_with_decoupled_weight_decay():
    config = make_config("d", "o", optimizer="sgd", learning_rate=0.01, weight_decay=5e-4, momentum=0.8)
    optimizer = build_optimizer(keras, config, steps_per_epoch=10)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.nesterov is True and optimizer.momentum == pytest.approx(0.8)
    assert optimizer.weight_decay == pytest.approx(5e-4)
    adamw = build_optimizer(keras, make_config("d", "o"), steps_per_epoch=10)
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert isinstance(adamw._learning_rate, keras.optimizers.schedules.CosineDecay)


def test_seed_keeps_its_inverse_time_decay():
    config = make_config("d", "o", preset="seed")
    assert config.schedule == "inverse-time"
    optimizer = build_optimizer(keras, config, steps_per_epoch=10)
    assert isinstance(optimizer, keras.optimizers.Adam) and not isinstance(optimizer, keras.optimizers.AdamW)
    assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.InverseTimeDecay)


def test_old_run_configs_keep_their_schedule(tmp_path):
    for optimizer, schedule in (("adam", "inverse-time"), ("adamw", "cosine")):
        path = tmp_path / f"{optimizer}.json"
        path.write_text(json.dumps({"data": "d", "out": "o", "optimizer": optimizer}))
        assert TrainConfig.load(path).schedule == schedule


def test_plateau_lowers_the_rate_and_its_counters_survive_a_restart():
    config = make_config("d", "o", optimizer="sgd", schedule="plateau", learning_rate=0.1, plateau_factor=0.5, plateau_patience=2)
    model = build_tiny()
    model.compile(optimizer=build_optimizer(keras, config, steps_per_epoch=1), loss="categorical_crossentropy")
    state: dict = {}
    callback = plateau_callback(keras, config, state)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, val_accuracy in enumerate([0.30, 0.40, 0.40]):
        callback.on_epoch_end(epoch, {"val_accuracy": val_accuracy})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    assert rates == pytest.approx([0.1, 0.1, 0.1])  # one epoch without progress: not yet a plateau
    assert state["plateau"] == {"best": pytest.approx(0.40), "wait": 1, "cooldown": 0}

    # A resumed run builds a new callback from state.json: the second stalled epoch is a plateau.
    resumed = plateau_callback(keras, config, json.loads(json.dumps(state)))
    resumed.set_model(model)
    resumed.on_train_begin()
    resumed.on_epoch_end(3, {"val_accuracy": 0.39})
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.05)


# --- mixup and cutmix ----------------------------------------------------------------------


def _numbered_batch(count: int = 8):
    """Face i is the constant i + 1 and has label i, so every pixel says which face it came from."""
    faces = np.stack([np.full((48, 48, 1), i + 1.0, "float32") for i in range(count)])
    return faces, np.eye(count, dtype="float32")


def test_mixup_blends_faces_and_labels_with_one_weight():
    faces, labels = _numbered_batch()
    mixed, soft = mix_batch(faces, labels, np.random.default_rng(0), mixup=0.4)
    assert mixed.shape == faces.shape and soft.shape == labels.shape
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(len(faces)):
        own = soft[i, i]
        partner = int(np.argmax(np.where(np.arange(len(faces)) == i, -1, soft[i]))) if own < 1 else i
        # Every pixel is own * (i + 1) + (1 - own) * (partner + 1).
        np.testing.assert_allclose(mixed[i], own * (i + 1) + (1 - own) * (partner + 1), rtol=1e-5)
    assert (soft.max(axis=1) < 1).any()  # some faces really were mixed


def test_cutmix_labels_follow_the_pasted_area():
    faces, labels = _numbered_batch()
    mixed, soft = mix_batch(faces, labels, np.random.default_rng(3), cutmix=1.0)
    own_share = np.array([(mixed[i] == i + 1).mean() for i in range(len(faces))])
    # Faces paired with themselves stay whole; the others keep exactly the label weight of their pixels.
    np.testing.assert_allclose(soft[np.arange(len(faces)), np.arange(len(faces))], own_share, atol=1e-6)
    assert set(np.unique(mixed)) <= set(range(1, len(faces) + 1))  # pasted, not blended
    assert (own_share < 1).any()


def test_no_alpha_means_no_mixing():
    faces, labels = _numbered_batch()
    same_faces, same_labels = mix_batch(faces, labels, np.random.default_rng(0))
    assert same_faces is faces and same_labels is labels


def test_mixed_batches_repeat_per_epoch_and_resume_where_they_were():
    faces, labels = _numbered_batch(10)
    first = training_batches(keras, faces, labels, batch_size=4, seed=1, mixup=0.5)
    assert len(first) == 3 and len(first[2][0]) == 2
    epoch0 = [first[i][1] for i in range(3)]
    first.on_epoch_end()
    epoch1 = [first[i][1] for i in range(3)]
    assert not np.allclose(epoch0[0], epoch1[0])
    resumed = training_batches(keras, faces, labels, batch_size=4, seed=1, first_epoch=1, mixup=0.5)
    for index in (2, 0, 1):  # any order Keras asks in
        np.testing.assert_array_equal(resumed[index][1], epoch1[index])


def test_process_slices_make_up_the_global_batch_and_split_over_the_devices():
    faces, labels = _numbered_batch(11)
    whole = training_batches(keras, faces, labels, batch_size=4, seed=2, devices=2)
    halves = [training_batches(keras, faces, labels, batch_size=4, seed=2, devices=2, process_id=p, num_processes=2) for p in (0, 1)]
    # 11 faces in batches of 4 over 2 devices: 4, 4, then 3 cut to 2 (one face sits out this epoch).
    assert batch_bounds(11, 4, 2) == [(0, 4), (4, 8), (8, 10)] and len(whole) == 3
    for index in range(3):
        np.testing.assert_array_equal(np.concatenate([half[index][0] for half in halves]), whole[index][0])
        assert len(halves[0][index][0]) == len(halves[1][index][0]) == len(whole[index][0]) // 2
    assert batch_bounds(3, 4, 4) == []


# --- test-time views -----------------------------------------------------------------------


def test_ten_crop_makes_ten_views_corners_centre_and_mirrors():
    faces = _faces(3)
    stacked = keras.ops.convert_to_numpy(StackedViews("crops")(faces))
    assert stacked.shape == (30, 48, 48, 1)
    enlarged = keras.ops.convert_to_numpy(keras.ops.image.resize(faces, (54, 54), interpolation="bilinear"))
    corners = [(0, 0), (0, 6), (6, 0), (6, 6), (3, 3)]
    for view, (y, x) in enumerate(corners):
        np.testing.assert_allclose(stacked[view * 3 : view * 3 + 3], enlarged[:, y : y + 48, x : x + 48], atol=1e-4)
        np.testing.assert_allclose(stacked[(view + 5) * 3 : (view + 6) * 3], enlarged[:, y : y + 48, x : x + 48][:, :, ::-1], atol=1e-4)
    assert keras.ops.convert_to_numpy(StackedViews("flip")(faces)).shape == (6, 48, 48, 1)


def test_averaged_model_is_the_mean_of_the_network_over_the_views():
    keras.utils.set_random_seed(1)
    network = build_tiny()
    faces = _faces(4, seed=2)
    stacked = keras.ops.convert_to_numpy(StackedViews("crops")(faces))
    per_view = network.predict(stacked, verbose=0).reshape(10, 4, 7)
    averaged = averaged_over_views(network, "crops").predict(faces, verbose=0)
    np.testing.assert_allclose(averaged, per_view.mean(axis=0), atol=1e-5)
    assert not np.allclose(averaged, network.predict(faces, verbose=0), atol=1e-4)


def test_teacher_targets_average_the_ten_crops(tmp_path):
    keras.utils.set_random_seed(2)
    teacher = build_tiny()
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    ensemble = build_teacher_ensemble([str(path)], (48, 48, 1), views="crops")
    faces = _faces(3, seed=4)
    np.testing.assert_allclose(
        ensemble.predict(faces, verbose=0), averaged_over_views(teacher, "crops").predict(faces, verbose=0), atol=1e-5
    )


# --- crop jitter ---------------------------------------------------------------------------


def _square_areas(jitter: str, samples: int = 64) -> np.ndarray:
    """Bright-square area after the jitter's zoom, relative to the original, over many draws."""
    zoom = next(layer for layer in build_augmenter(0, crop_jitter=jitter).layers if type(layer).__name__ == "RandomZoom")
    faces = np.zeros((samples, 48, 48, 1), "float32")
    faces[:, 16:32, 16:32] = 255.0
    zoomed = keras.ops.convert_to_numpy(zoom(faces, training=True))
    return (zoomed > 127).sum(axis=(1, 2, 3)) / 256.0


def test_detector_jitter_reaches_a_quarter_larger_crops():
    fer, detector = _square_areas("fer"), _square_areas("detector")
    # A crop 1.25x the side shows the face at 0.8x: 0.64 of the area; FER's jitter stops at 1.1x (0.83).
    assert detector.min() < 0.72 and fer.min() > 0.75
    assert detector.max() < 1.35 and fer.max() < 1.35  # both zoom in at most to 0.9x the side
    shifts = {
        name: next(x for x in build_augmenter(0, crop_jitter=name).layers if type(x).__name__ == "RandomTranslation")
        for name in CROP_JITTERS
    }
    assert shifts["detector"].height_factor == CROP_JITTERS["detector"].shift == 0.06


# --- large networks and presets ------------------------------------------------------------


def test_large_teacher_networks():
    vgg, resnet = ARCHITECTURES["vgg"].build(), ARCHITECTURES["resnet18"].build()
    assert 35_000_000 < vgg.count_params() < 45_000_000
    assert 11_000_000 < resnet.count_params() < 11_500_000
    assert sum(type(layer).__name__ == "Add" for layer in resnet.layers) == 8  # 4 stages x 2 basic blocks
    faces = _faces(2)
    for model in (vgg, resnet):
        assert model.input_shape == (None, 48, 48, 1)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(faces, training=False)).sum(axis=1), 1.0, rtol=1e-5)


def test_recipe_presets_resolve_to_the_documented_values():
    vgg = make_config("d", "o", preset="teacher-vgg")
    assert (vgg.arch, vgg.epochs, vgg.batch_size, vgg.optimizer, vgg.schedule) == ("vgg", 300, 64, "sgd", "plateau")
    assert (vgg.learning_rate, vgg.momentum, vgg.plateau_factor, vgg.plateau_patience, vgg.tta) == (0.01, 0.9, 0.75, 5, "crops")
    resnet = make_config("d", "o", preset="teacher-resnet")
    assert (resnet.arch, resnet.epochs, resnet.optimizer, resnet.schedule, resnet.mixup) == ("resnet18", 200, "sgd", "cosine", 0.2)
    assert (resnet.learning_rate, resnet.label_smoothing, resnet.erasing) == (0.1, 0.1, 0.5)
    student = make_config("d", "o", preset="edge-v3", teachers=("a.keras",))
    assert (student.arch, student.epochs, student.crop_jitter, student.tta) == ("edge-wide", 200, "detector", "crops")
    with pytest.raises(ConfigError, match="--preset edge-v3 distils"):
        make_config("d", "o", preset="edge-v3")
    assert make_config("d", "o").crop_jitter == "fer" and make_config("d", "o").tta == "flip"


def test_unknown_choices_are_named():
    with pytest.raises(ConfigError, match="--schedule step: unknown; expected one of cosine, plateau, inverse-time"):
        make_config("d", "o", schedule="step")
    with pytest.raises(ConfigError, match="--mixup -1: expected a Beta alpha >= 0"):
        make_config("d", "o", mixup=-1)
    result = runner.invoke(app, ["--data", "x", "--out", "y", "--optimizer", "rmsprop"])
    assert result.exit_code == 2 and "'rmsprop' is not one of" in result.output
    result = runner.invoke(app, ["--data", "x", "--out", "y", "--tta", "five"])
    assert result.exit_code == 2 and "'five' is not one of" in result.output


# --- everything together, through the CLI --------------------------------------------------


def test_cli_run_with_every_recipe_option(tmp_path, fer_folder, monkeypatch):
    """SGD + plateau + mixup/cutmix + label smoothing + a distillation teacher with ten-crop
    targets + detector jitter, two epochs of a tiny network, interrupted after the first."""
    from tests.training_helpers import interrupted_after_each_epoch
    from trainer import train as train_module

    monkeypatch.setitem(ARCHITECTURES, "edge", Architecture("edge", build_tiny, InputSpec(scale=1.0), "tiny"))
    keras.utils.set_random_seed(5)
    teacher = tmp_path / "teacher.keras"
    build_tiny().save(teacher)
    seen_labels = []
    original_mix = epoch_batches.mix_batch

    def recording_mix(*args, **kwargs):
        faces, labels = original_mix(*args, **kwargs)
        seen_labels.append(labels)
        return faces, labels

    monkeypatch.setattr(epoch_batches, "mix_batch", recording_mix)
    out = tmp_path / "run"
    options = ["--data", str(fer_folder), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--epochs", "2"]
    options += ["--batch-size", "32", "--optimizer", "sgd", "--schedule", "plateau", "--learning-rate", "0.05"]
    options += ["--mixup", "0.4", "--cutmix", "1.0", "--label-smoothing", "0.1", "--teacher", str(teacher)]
    options += ["--tta", "crops", "--crop-jitter", "detector"]
    original_checkpoint = train_module._EpochCheckpoint
    monkeypatch.setattr(train_module, "_EpochCheckpoint", interrupted_after_each_epoch(original_checkpoint))
    result = runner.invoke(app, options)
    assert result.exit_code == 130, result.output
    monkeypatch.setattr(train_module, "_EpochCheckpoint", original_checkpoint)
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 1 and "plateau" in state

    result = runner.invoke(app, ["--resume", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["optimizer"], config["schedule"], config["mixup"], config["cutmix"]) == ("sgd", "plateau", 0.4, 1.0)
    assert (config["tta"], config["crop_jitter"]) == ("crops", "detector")
    # 140 faces in batches of 32: 5 batches an epoch, every one mixed.
    assert len(seen_labels) >= 10 and all((labels.max(axis=1) < 1).any() for labels in seen_labels[:5])
    checkpoint = keras.models.load_model(out / "checkpoints" / "last.keras")
    assert isinstance(checkpoint.optimizer, keras.optimizers.SGD) and checkpoint.optimizer.nesterov
    assert int(checkpoint.optimizer.iterations.numpy()) == 10

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tta"] == "crops"

    data = load_fer2013(str(fer_folder), cache_dir=tmp_path / "cache")
    student = keras.models.load_model(out / "model.keras")
    faces = gray48_to_input(data.split("val").images, InputSpec(scale=1.0))
    averaged = averaged_over_views(student, "crops").predict(faces, verbose=0)
    assert metrics["val_tta"]["accuracy"] == pytest.approx(float((averaged.argmax(1) == data.split("val").labels).mean()))
    assert "averaged over views (crops)" in result.output


# --- saved teacher targets -----------------------------------------------------------------


def test_distillation_from_saved_targets_is_the_same_loss():
    from trainer.distill import DistillationLoss

    rng = np.random.default_rng(6)
    student = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(5, 7)))).astype("float32")
    teacher = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(5, 7)))).astype("float32")
    labels = np.eye(7, dtype="float32")[rng.integers(0, 7, 5)]
    online = DistillationLoss(0.7, 2.0, 0.1)(labels, np.concatenate([student, teacher], axis=1))
    saved = DistillationLoss(0.7, 2.0, 0.1, teacher_in_labels=True)(np.concatenate([labels, teacher], axis=1), student)
    assert float(saved) == pytest.approx(float(online), rel=1e-6)
    uniform = DistillationLoss(0.7, 2.0, 0.1, teacher_in_labels=True)(
        np.concatenate([labels, np.full_like(teacher, 1 / 7)], axis=1), student
    )
    assert float(uniform) != pytest.approx(float(saved), rel=1e-3)  # the targets really enter the loss


def test_teacher_run_writes_targets_that_a_student_learns_from(tmp_path, fer_folder, monkeypatch):
    from trainer.train import TrainingError, train

    monkeypatch.setitem(ARCHITECTURES, "edge", Architecture("edge", build_tiny, InputSpec(scale=1.0), "tiny"))
    cache = str(tmp_path / "cache")
    teacher = make_config(str(fer_folder), str(tmp_path / "teacher"), epochs=1, batch_size=64, write_targets=True, cache_dir=cache)
    train(teacher)
    saved = np.load(tmp_path / "teacher" / "targets.npz")
    data = load_fer2013(str(fer_folder), cache_dir=cache)
    model = keras.models.load_model(tmp_path / "teacher" / "model.keras")
    faces = gray48_to_input(data.split("train").images, InputSpec(scale=1.0))
    assert saved["train"].shape == (140, 7) and saved["val"].shape == (42, 7) and str(saved["views"]) == "flip"
    np.testing.assert_allclose(saved["train"], averaged_over_views(model, "flip").predict(faces, verbose=0), atol=1e-5)

    targets = str(tmp_path / "teacher" / "targets.npz")
    student = make_config(str(fer_folder), str(tmp_path / "student"), epochs=1, batch_size=64, teacher_targets=(targets,), cache_dir=cache)
    metrics = train(student)
    assert metrics["epochs_run"] == 1 and 0.0 <= metrics["val_accuracy"] <= 1.0
    checkpoint = keras.models.load_model(tmp_path / "student" / "checkpoints" / "last.keras")
    assert checkpoint.loss.teacher_in_labels is True

    other = tmp_path / "other.npz"
    np.savez(other, train=saved["train"], val=saved["val"], views=saved["views"], fingerprint=np.array("0123456789abcdef"))
    wrong = make_config(str(fer_folder), str(tmp_path / "wrong"), epochs=1, teacher_targets=(str(other),), cache_dir=cache)
    with pytest.raises(TrainingError, match=f"^{other}: computed on other training faces"):
        train(wrong)
    with pytest.raises(ConfigError, match="--teacher and --teacher-targets exclude each other"):
        make_config("d", "o", teachers=("a.keras",), teacher_targets=(targets,))


def test_max_minutes_finishes_a_run_that_resume_continues(tmp_path, fer_folder, monkeypatch):
    """A limit of 0 minutes stops after the first epoch, with every artifact written; a
    teacher's best weights then give targets without any training (--epochs 0 --weights)."""
    from trainer.train import train

    monkeypatch.setitem(ARCHITECTURES, "edge", Architecture("edge", build_tiny, InputSpec(scale=1.0), "tiny"))
    cache = str(tmp_path / "cache")
    out = tmp_path / "run"
    config = make_config(str(fer_folder), str(out), epochs=3, batch_size=64, cache_dir=cache)
    metrics = train(config, max_minutes=0)
    assert metrics["epochs_run"] == 1 and (out / "model.keras").is_file() and (out / "metrics.json").is_file()
    assert train(config, resume=True)["epochs_run"] == 3

    packaged = make_config(str(fer_folder), str(tmp_path / "targets"), epochs=0, weights=str(out / "model.keras"), write_targets=True)
    train(replace(packaged, cache_dir=cache))
    best = keras.models.load_model(out / "model.keras")
    faces = gray48_to_input(load_fer2013(str(fer_folder), cache_dir=cache).split("val").images, InputSpec(scale=1.0))
    np.testing.assert_allclose(
        np.load(tmp_path / "targets" / "targets.npz")["val"], averaged_over_views(best, "flip").predict(faces, verbose=0), atol=1e-5
    )



def test_the_schedule_counts_the_batches_an_epoch_really_has():
    from types import SimpleNamespace

    from trainer.train import _steps_per_epoch

    two_devices = SimpleNamespace(devices=2, even_batches=True)
    # 9 faces in batches of 4 split over 2 devices: 4, 4, and a last face no device pair can share.
    assert _steps_per_epoch(9, 4, two_devices) == 2
    assert _steps_per_epoch(10, 4, two_devices) == 3  # the last batch cut to 2
    assert _steps_per_epoch(9, 4) == 3  # one device: every face, ceil(9 / 4)
