"""What users of torchvision and timm expect: predict, weights on a subset of classes,
one spelling of the dataset across commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from vgg_repro import checkpoints, cli, models
from vgg_repro.data import synth
from vgg_repro.errors import ConfigError

WNIDS = [f"n{1000000 + 7 * i:08d}" for i in range(20)]  # ImageNet-style class names


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A miniature-sized net that records its training scale, as a pipeline model.pt."""
    torch.manual_seed(0)
    net = models.build("A", num_classes=10, width=1 / 16, crop_size=32, init="xavier").eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    checkpoints.save_model(
        path, net, width=1 / 16, classes=list(synth.CLASSES), scale_min=37, scale_max=37,
        mean_rgb=[120.0, 120.0, 120.0],
    )  # fmt: skip
    return path


def test_predict_prints_the_top_classes_of_two_images(tiny_ckpt, tmp_path, capsys):
    images = []
    for i in range(2):
        path = tmp_path / f"image{i}.jpg"
        synth.draw_image(1, "val", i, 0).save(path)
        images.append(str(path))
    assert cli.main(["predict", "--ckpt", str(tiny_ckpt), *images, "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == images
    for line in lines:
        ranked = [item.rsplit(" ", 1) for item in line.split(": ", 1)[1].split(", ")]
        assert len(ranked) == 3 and all(name in synth.CLASSES for name, _ in ranked)
        p = [float(v) for _, v in ranked]
        assert p == sorted(p, reverse=True) and 0 < sum(p) <= 1.0 + 1e-3


def test_evaluate_accepts_the_dataset_root_as_fit_does(tiny_ckpt, tmp_path, capsys):
    root = tmp_path / "data"
    synth.generate(root, num_classes=10, train_per_class=1, val_per_class=1)
    common = ["evaluate", "--ckpt", str(tiny_ckpt), "--scales", "single", "--quiet"]
    assert cli.main([*common, "--data", str(root), "--output", str(tmp_path / "a.json")]) == 0
    argv = [*common, "--data.root", str(root / "val"), "--output", str(tmp_path / "b.json")]
    assert cli.main(argv) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["data"] == str(root / "val") == b["data"] and a["top1_error"] == b["top1_error"]
    assert cli.main([*common, "--data", str(root), "--split", "nope"]) == 2
    assert "--split nope" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tv_weights(tmp_path_factory):
    """torchvision's vgg11 with 20 outputs, as a state dict file (random weights)."""
    torch.manual_seed(0)
    tv = torchvision.models.vgg11(weights=None, num_classes=len(WNIDS)).eval()
    path = tmp_path_factory.mktemp("tv") / "vgg11.pth"
    torch.save(tv.state_dict(), path)
    return tv, path


def test_load_and_build_with_weights_round_trip_all_three_kinds(tiny_ckpt, tv_weights, tmp_path):
    """A pipeline model.pt, a Lightning checkpoint and torchvision's state dict: one line
    each, the same logits as the net that was saved, and the preprocessing with it."""
    import vgg_repro

    ours, meta = checkpoints.model_from_checkpoint(tiny_ckpt)
    lightning = tmp_path / "last.ckpt"  # the layout vgg-repro fit writes
    state = {f"net.{k}": v for k, v in ours.state_dict().items()}
    torch.save({"vgg_repro": meta, "state_dict": state, "epoch": 3}, lightning)
    x = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        for path in (tiny_ckpt, lightning):
            net = vgg_repro.load(path)
            assert net.classes == list(synth.CLASSES) and net.test_scales() == [37]
            assert net.test_scales("multi") == [32, 37, 42] and net.mean_rgb == (120.0,) * 3
            torch.testing.assert_close(net.model(x), ours(x), rtol=0, atol=0)
            built = models.build("A", weights=path)
            assert not built.training and built.num_classes == 10 and built.crop_size == 32
            torch.testing.assert_close(built(x), ours(x), rtol=0, atol=0)
        image = Image.new("RGB", (60, 45), (130, 120, 110))
        shaped = vgg_repro.load(tiny_ckpt).transforms(image)
        assert shaped.shape == (3, 37, 49) and torch.allclose(shaped[0], torch.tensor(10.0))

        tv, path = tv_weights
        y = torch.rand(1, 3, 224, 224)
        net = vgg_repro.load(path)  # recognised as vgg11 by its 8 convolutions
        assert net.model.name == "A" and net.test_scales() == [256]
        torch.testing.assert_close(net.model(y), tv(y), rtol=0, atol=0)
        torch.testing.assert_close(models.build("vgg11", weights=path)(y), tv(y), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="holds configuration A, not E"):
        models.build("E", weights=tiny_ckpt)


def test_torchvision_weights_run_on_a_subset_of_their_classes(tv_weights, tmp_path, capsys):
    """10 of the weights' 20 classes: their outputs, and the soft-max over those 10."""
    _, weights = tv_weights
    (tmp_path / "classes.txt").write_text("\n".join(f"{w} name {i}" for i, w in enumerate(WNIDS)))
    subset = WNIDS[3:13]
    rng = np.random.default_rng(0)
    for wnid in subset:
        (tmp_path / "val" / wnid).mkdir(parents=True)
        pixels = rng.integers(0, 256, size=(224, 240, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "val" / wnid / "x.png")
    argv = ["evaluate", "--torchvision", "vgg11", "--weights", str(weights)]
    argv += ["--data", str(tmp_path / "val"), "--quiet", "--output", str(tmp_path / "m.json")]
    assert cli.main(argv) == 2  # without the class names: refused, with a hint
    assert "--classes FILE" in capsys.readouterr().err
    assert cli.main([*argv, "--classes", str(tmp_path / "classes.txt")]) == 0
    err = capsys.readouterr().err
    assert "the data has 10 of its 20 classes; its soft-max is restricted" in err
    metrics = json.loads((tmp_path / "m.json").read_text())
    # torchvision's weights record no training S: the presets take S = 256, so the
    # default ("multi") is Q = 224, 256, 288 and "single" is Q = 256.
    assert metrics["num_classes"] == 10 and metrics["checkpoints"][0]["test_scales"] == [
        224, 256, 288
    ]  # fmt: skip

    # By hand: the 10 outputs of each image at each Q and its mirror image, averaged.
    from vgg_repro.evaluation.networks import load_torchvision
    from vgg_repro.evaluation.protocols import ScoreMapNet, dense_evaluate, rescale

    net = load_torchvision("vgg11", weights, tmp_path / "classes.txt")
    order = [WNIDS.index(w) for w in subset]
    member = ScoreMapNet(net.model, net.mean_rgb, net.std_rgb, order).eval()
    right = 0
    with torch.no_grad():
        for label, wnid in enumerate(subset):
            image = Image.open(tmp_path / "val" / wnid / "x.png").convert("RGB")
            p = sum(dense_evaluate(member, rescale(image, q)[None]) for q in (224, 256, 288)) / 3
            assert p.shape == (1, 10)
            right += int(p.argmax() == label)
    assert metrics["top1_error"] == pytest.approx(100.0 * (1 - right / 10))
