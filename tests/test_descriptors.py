"""Appendix B: the image descriptors, the linear classifier on them, their CLI and stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from vgg_repro import checkpoints, cli, models
from vgg_repro.data import synth
from vgg_repro.errors import CheckpointError, ConfigError, DataError
from vgg_repro.evaluation import descriptors as D
from vgg_repro.evaluation import transfer as T
from vgg_repro.evaluation.networks import EvalNet
from vgg_repro.pipeline import claims, report
from vgg_repro.pipeline import transfer as transfer_stage


class LeftHalf(nn.Module):
    """A hand-built 'net' whose activation map is known: the left half of the image."""

    crop_size = 4
    width = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1] // 2]


def _tiny_net(seed: int = 0, name: str = "A") -> models.VGG:
    torch.manual_seed(seed)
    return models.build(name, num_classes=3, width=1 / 16, crop_size=32, init="xavier").eval()


def test_descriptor_is_the_average_over_positions_and_flip_then_l2():
    """By hand: mean of the left half and of the mirrored image's left half, per scale,
    the scales stacked, then divided by the norm."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, size=(2, 3, 6, 8)).astype(np.float32)
    b = rng.uniform(0, 255, size=(2, 3, 8, 10)).astype(np.float32)
    net = LeftHalf()
    per_scale = [D.describe_at_scale(net, torch.from_numpy(x)) for x in (a, b)]

    def by_hand(x):
        left = x[..., : x.shape[-1] // 2].mean(axis=(2, 3))
        mirrored = x[..., ::-1]
        return (left + mirrored[..., : x.shape[-1] // 2].mean(axis=(2, 3))) / 2

    for got, x in zip(per_scale, (a, b), strict=True):
        np.testing.assert_allclose(got.numpy(), by_hand(x), rtol=1e-5)
    stacked = np.concatenate([by_hand(a), by_hand(b)], 1)
    stacked /= np.linalg.norm(stacked, axis=1, keepdims=True)
    np.testing.assert_allclose(D.aggregate(per_scale, "stack").numpy(), stacked, rtol=1e-5)
    averaged = (by_hand(a) + by_hand(b)) / 2
    averaged /= np.linalg.norm(averaged, axis=1, keepdims=True)
    np.testing.assert_allclose(D.aggregate(per_scale, "average").numpy(), averaged, rtol=1e-5)


def test_feature_map_at_the_crop_size_is_fc7_after_its_relu():
    """The descriptor is the penultimate layer's output: FC7 after its ReLU, no FC8."""
    model = _tiny_net()
    net = D.FeatureMapNet(model, mean_rgb=(0.0, 0.0, 0.0))
    x = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        fc7 = model.classifier[:5](torch.flatten(model.features(x), 1))
        got = D.describe_at_scale(net, x, flip=False)
    assert got.shape == (2, model.classifier[3].out_features)
    torch.testing.assert_close(got, fc7, rtol=1e-4, atol=1e-4)
    assert (got >= 0).all()


def test_an_image_and_its_mirror_have_the_same_descriptor():
    net = EvalNet(_tiny_net(), "test", mean_rgb=(120.0, 110.0, 100.0))
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8))
    mirror = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    got = D.describe(net, [image, mirror], scales=[37, 46])
    torch.testing.assert_close(got[0], got[1], rtol=1e-5, atol=1e-6)
    assert got.dtype == torch.float32 and got.shape == (2, 2 * 256)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(2))


@pytest.fixture(scope="module")
def tiny_transfer(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    synth.generate(root, dataset="transfer", num_classes=3, train_per_class=4, val_per_class=2)
    return root


def test_two_nets_concatenate_to_the_summed_width(tiny_transfer):
    a = EvalNet(_tiny_net(0), "a")
    b = EvalNet(_tiny_net(1, "B"), "b")
    one = D.describe_folder([a], tiny_transfer / "test", [37])
    two = D.describe_folder([b], tiny_transfer / "test", [37, 55])
    both = D.describe_folder([a, b], tiny_transfer / "test", [37, 55])
    width_a = D.describe_folder([a], tiny_transfer / "test", [37, 55])["features"].shape[1]
    assert both["features"].shape[1] == width_a + two["features"].shape[1]
    assert one["features"].shape[1] == 256 and width_a == 512
    np.testing.assert_allclose(both["features"][:, width_a:], two["features"], rtol=1e-5)
    assert both["files"][0] == "chevron/chevron_test_00000.jpg"
    assert both["classes"] == ["chevron", "diamond", "hourglass"]


def test_each_row_of_a_folder_is_that_files_descriptor(tiny_transfer):
    """Images are batched by size, not in the folder's order: the rows must still be
    in the order of ``files``, each the descriptor of its own image."""
    net = EvalNet(_tiny_net(0), "a", mean_rgb=(120.0, 110.0, 100.0))
    root = tiny_transfer / "train"
    got = D.describe_folder([net], root, [37, 55], batch_size=4)
    alone = D.describe(net, [root / f for f in got["files"]], [37, 55], batch_size=1)
    np.testing.assert_allclose(got["features"], alone.numpy(), rtol=1e-5, atol=1e-6)
    assert got["files"] == sorted(got["files"])  # the folder's order, class by class


def test_linear_classifier_separates_separable_features():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16) * 10
    labels = np.repeat(np.arange(4), 12)
    x = centres[labels] + rng.normal(0, 0.5, size=(len(labels), 16))
    files = [f"c{y}/{i}.jpg" for i, y in enumerate(labels)]
    split = {"classes": ["c0", "c1", "c2", "c3"]}
    train = split | {"features": x[::2], "labels": labels[::2].tolist(), "files": files[::2]}
    test = split | {"features": x[1::2], "labels": labels[1::2].tolist(), "files": files[1::2]}
    result = T.transfer(train, test, folds=3)
    assert result["metric"] == "mean_class_accuracy" and result["value"] == 100.0
    assert all(result["correct"]) and result["n_test"] == 24 and result["C"] in T.DEFAULT_CS


def test_the_classifier_does_not_depend_on_the_number_of_processes():
    """The transfer stage runs the cross-validation on every core: same C, same
    predictions, same cross-validated score as on one."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 10)
    x = rng.normal(0, 1, size=(len(labels), 8)) + np.eye(3, 8)[labels] * 1.5  # overlapping
    one, chosen_one = T.fit_linear(x, labels, folds=3, jobs=None)
    two, chosen_two = T.fit_linear(x, labels, folds=3, jobs=2)
    assert chosen_one == chosen_two
    probe = rng.normal(0, 1, size=(50, 8))
    assert (one.predict(probe) == two.predict(probe)).all()


def test_multi_label_images_are_scored_by_mean_average_precision():
    """An image filed under two class folders has both labels; the score is mAP."""
    rng = np.random.default_rng(0)
    n = 40
    targets = rng.random((n, 3)) < 0.5
    targets[np.arange(n), np.arange(n) % 3] = True  # every image has a label
    x = targets * 5.0 + rng.normal(0, 0.3, size=(n, 3))
    files, labels, rows = [], [], []
    for i in range(n):
        for c in np.flatnonzero(targets[i]):
            files.append(f"c{c}/{i}.jpg")
            labels.append(int(c))
            rows.append(x[i])
    half = [i for i, f in enumerate(files) if int(f.split("/")[1][:-4]) % 2 == 0]
    other = [i for i in range(len(files)) if i not in half]

    def part(index):
        return {
            "classes": ["c0", "c1", "c2"],
            "features": np.array([rows[i] for i in index]),
            "labels": [labels[i] for i in index],
            "files": [files[i] for i in index],
        }

    result = T.transfer(part(half), part(other), folds=2)
    assert result["multi_label"] and result["metric"] == "mAP"
    assert result["value"] > 95 and result["n_test"] == n // 2


def test_bad_input_gets_a_clear_error(tmp_path, capsys):
    # A checkpoint without FC layers.
    model = _tiny_net()
    path = tmp_path / "model.pt"
    checkpoints.save_model(path, model, width=1 / 16, classes=["a", "b", "c"])
    ckpt = torch.load(path, weights_only=False)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("features")}
    torch.save(ckpt, tmp_path / "no_fc.pt")
    with pytest.raises(CheckpointError, match="no_fc.pt has no FC layers"):
        D.load_descriptor_net(tmp_path / "no_fc.pt")
    # A scale below the crop.
    net = D.load_descriptor_net(path)
    with pytest.raises(ConfigError, match="scale Q = 20 is below the crop size 32"):
        D.describe(net, [Image.new("RGB", (40, 40))], scales=[20, 37])
    # Rows that do not match the file list.
    described = {"features": np.zeros((3, 4)), "files": ["a/1", "a/2"], "labels": [0, 0]}
    D.save_features(tmp_path / "f.npy", described | {"classes": ["a"]})
    with pytest.raises(DataError, match="f.npy has 3 rows but .*f.json lists 2 files"):
        D.load_features(tmp_path / "f.npy")
    # A test class that the training set lacks.
    train = {"classes": ["a", "b"], "features": np.eye(4, 2), "labels": [0, 0, 1, 1]}
    train["files"] = ["a/1", "a/2", "b/3", "b/4"]
    test = {"classes": ["a", "z"], "features": np.eye(2), "labels": [0, 1], "files": ["a/5", "z/6"]}
    with pytest.raises(
        DataError, match=r"1 classes that the training set lacks \(first: \['z'\]\)"
    ):
        T.transfer(train, test)
    # The same errors on the command line: one line, exit status 2.
    assert cli.main(["features", "--ckpt", str(tmp_path / "no_fc.pt"), "--data", ".",
                     "--out", str(tmp_path / "x.npy")]) == 2  # fmt: skip
    assert (
        cli.main(["transfer", "--features", str(tmp_path / "f.npy"), str(tmp_path / "f.npy")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("vgg-repro features: error: ") and "has no FC layers" in err[0]
    assert err[1].startswith("vgg-repro transfer: error: ") and "3 rows" in err[1]
    assert len(err) == 2


def test_features_and_transfer_commands_round_trip(tiny_transfer, tmp_path, capsys):
    model = _tiny_net()
    path = tmp_path / "model.pt"
    checkpoints.save_model(path, model, width=1 / 16, classes=["arrow", "circle", "crescent"])
    for split in ("train", "test"):
        argv = ["features", "--ckpt", str(path), "--ckpt", str(path)]
        argv += ["--data", str(tiny_transfer / split), "--out", str(tmp_path / f"{split}.npy")]
        assert cli.main(argv) == 0
    info = json.loads((tmp_path / "train.json").read_text())
    assert info["scales"] == [37, 55, 73] and info["aggregation"] == "stack"
    assert np.load(tmp_path / "train.npy").shape == (12, 2 * 3 * 256)
    argv = ["transfer", "--features", str(tmp_path / "train.npy"), str(tmp_path / "test.npy")]
    assert cli.main([*argv, "--folds", "2", "--output", str(tmp_path / "m.json")]) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["n_train"] == 12 and result["n_test"] == 6 and result["num_classes"] == 3
    assert "mean class accuracy" in capsys.readouterr().out


def test_transfer_data_has_classes_that_no_net_was_trained_on():
    assert not set(synth.TRANSFER_CLASSES) & set(synth.CLASSES)
    for name in synth.TRANSFER_CLASSES:
        assert synth.shape_polygons(name)  # every class has a shape


def test_transfer_claims_follow_the_paired_tests():
    n = 200
    good = np.arange(n) % 10 != 0  # 90% right
    weak = np.arange(n) % 2 == 0  # 50% right
    entries = {k: {"value": 100.0 * v.mean(), "num_classes": 10} for k, v in
               {"A": weak, "D": good, "E": good, "D+E": good, "pixels": weak}.items()}  # fmt: skip
    right = {"A": weak, "D": good, "E": good, "D+E": good, "pixels": weak}
    verdicts = {
        c["id"]: c["verdict"]
        for c in claims.check_claims({}, {}, {"descriptors": entries, "correct": right})
    }
    assert verdicts == {"transfer_depth": "agrees", "transfer_combination": "inconclusive"}
    right |= {"D": weak, "E": weak}
    verdicts = {c["id"]: c["verdict"] for c in claims.check_claims({}, {}, {
        "descriptors": entries, "correct": right})}  # fmt: skip
    assert verdicts == {"transfer_depth": "inconclusive", "transfer_combination": "agrees"}


def test_report_reads_the_transfer_stage_output():
    assert report.TABLE11 == transfer_stage.TABLE11_PATH


def test_data_split_draws_a_seeded_train_test_split(tmp_path, capsys):
    """Caltech's layout (CLASS/IMAGE, no split) into train/ and test/, Table 11's way."""
    source = tmp_path / "categories"
    for name, n in (("ant", 5), ("bee", 4), ("BACKGROUND_Google", 1)):
        (source / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8)).save(source / name / f"image_{i:04d}.jpg")
    argv = ["data", "split", str(source), "--train-per-class", "3", "--skip", "BACKGROUND_Google"]
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert cli.main([*argv, "--out", str(tmp_path / "b")]) == 0
    listing = {p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*.jpg")}
    again = {p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*.jpg")}
    assert listing == again and len(listing) == 9  # seeded: the same split twice
    assert len(list((tmp_path / "a" / "train" / "ant").iterdir())) == 3
    assert len(list((tmp_path / "a" / "test" / "bee").iterdir())) == 1
    assert not (tmp_path / "a" / "train" / "BACKGROUND_Google").exists()
    # Nothing is overwritten; a class too small to leave test images is named.
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 2
    small = ["data", "split", str(source), "--train-per-class", "4", "--skip", "BACKGROUND_Google"]
    assert cli.main([*small, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "exists: give a new folder" in err[0] and "bee has 4 images" in err[1]
    assert not (tmp_path / "c").exists()
