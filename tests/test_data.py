"""Image loading, the image folder, augmentation, statistics and convert-val (vgg_repro.data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vgg_repro import cli
from vgg_repro.data import folders, imagenet
from vgg_repro.data import images as data_images
from vgg_repro.data import stats as data_stats
from vgg_repro.data import transforms as T
from vgg_repro.errors import DataError


def write_image_folder(root: Path, classes=("cat", "dog", "fox"), train=10, val=4, seed=0):
    """A tiny ImageNet-layout folder of random JPEGs of varied size, plus one greyscale
    and one CMYK JPEG in train (the kinds ImageNet holds)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = rng.integers(40, 90, size=2)
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{c}_{i}.JPEG")
    Image.new("L", (50, 70), 120).save(root / "train" / classes[0] / "grey.jpg")
    Image.new("CMYK", (70, 50), (0, 200, 200, 0)).save(root / "train" / classes[1] / "cmyk.jpg")
    return root


def test_images_in_the_wild_become_rgb(tmp_path):
    Image.new("L", (8, 6), 50).save(tmp_path / "grey.jpg")
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red in CMYK
    Image.new("RGBA", (8, 6), (10, 20, 30, 255)).save(tmp_path / "rgba.png")
    Image.new("P", (8, 6), 3).save(tmp_path / "palette.png")
    for name in ("grey.jpg", "cmyk.jpg", "rgba.png", "palette.png"):
        img = data_images.load_image(tmp_path / name)
        assert img.mode == "RGB" and img.size == (8, 6)
    r, g, b = data_images.load_image(tmp_path / "cmyk.jpg").getpixel((4, 3))
    assert r > 200 and g < 60 and b < 60  # CMYK (0, 1, 1, 0) is red
    assert data_images.load_image(tmp_path / "grey.jpg").getpixel((4, 3))[0] == pytest.approx(
        50, abs=3
    )


def test_unreadable_files_name_the_file(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good)
    (tmp_path / "truncated.jpg").write_bytes(good.read_bytes()[:200])
    for name in ("junk.jpg", "truncated.jpg", "missing.jpg"):
        with pytest.raises(DataError, match=name):
            data_images.load_image(tmp_path / name)


def test_jpeg_draft_keeps_the_shorter_side_at_least_s(tmp_path):
    Image.new("RGB", (1000, 800), (90, 90, 90)).save(tmp_path / "big.jpg")
    img = data_images.load_image(tmp_path / "big.jpg", min_side=256)
    assert 256 <= min(img.size) < 800 and img.size[0] / img.size[1] == pytest.approx(1.25, 0.01)


def test_image_folder_labels_classes_and_skip_report(tmp_path):
    root = write_image_folder(tmp_path / "d")
    (root / "train" / "fox" / "corrupt.jpg").write_bytes(b"\xff\xd8 broken")
    transform = T.EvalTransform(40, 32)
    strict = data_images.ImageFolder(root / "train", transform)
    assert strict.classes == ["cat", "dog", "fox"] and len(strict) == 3 * 10 + 3
    bad = next(i for i, (p, _) in enumerate(strict.samples) if p.endswith("corrupt.jpg"))
    with pytest.raises(DataError, match="corrupt.jpg"):
        strict[bad]
    log = tmp_path / "skipped.txt"
    lenient = data_images.ImageFolder(root / "train", transform, skip_bad_files=True, skip_log=log)
    image, label = lenient[bad]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert label == lenient.samples[(bad + 1) % len(lenient)][1]  # the next readable image
    assert data_images.read_skip_log(log) == [strict.samples[bad][0]]


def test_class_folders_must_agree_between_splits(tmp_path):
    root = write_image_folder(tmp_path / "d", train=1, val=1)
    assert folders.check_classes(root) == ["cat", "dog", "fox"]
    (root / "val" / "emu").mkdir()
    with pytest.raises(DataError, match="only in val: \\['emu'\\]"):
        folders.check_classes(root)


@pytest.mark.parametrize("scales", [(256, 256), (384, 384), (256, 512)])
def test_augmentation_sizes_and_scale_range(scales):
    s_min, s_max = scales
    transform = T.TrainTransform(s_min, s_max, 224)
    drawn = {transform.target_scale(seed) for seed in range(400)}
    assert min(drawn) >= s_min and max(drawn) <= s_max
    if s_min < s_max:  # jittering covers the range, both ends included
        assert len(drawn) > 150 and max(drawn) - min(drawn) > 0.9 * (s_max - s_min)
    img = Image.new("RGB", (500, 300), (10, 200, 30))
    rescaled = T.isotropic_rescale(img, s_max)
    assert min(rescaled.size) == s_max and rescaled.size[0] == round(500 * s_max / 300)
    crop, alpha = transform(img, seed=7)
    assert crop.shape == (3, 224, 224) and crop.dtype == torch.uint8 and alpha.shape == (3,)
    again, alpha_again = transform(img, seed=7)
    assert torch.equal(crop, again) and torch.equal(alpha, alpha_again)  # one seed, one draw


def test_flip_and_crop_position_vary_with_the_seed():
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    img = Image.fromarray(np.stack([ramp] * 3, -1))
    transform = T.TrainTransform(48, 48, 32, colour_std=None)
    crops = [transform(img, seed)[0][0, 0] for seed in range(40)]
    increasing = [bool(c[-1] > c[0]) for c in crops]
    assert 0 < sum(increasing) < 40  # some flipped, some not
    assert len({int(c.min()) for c in crops}) > 5  # various horizontal offsets


def test_colour_shift_statistics():
    eigval = torch.tensor(T.IMAGENET_PCA_EIGVAL)
    eigvec = torch.tensor(T.IMAGENET_PCA_EIGVEC)
    transform = T.TrainTransform(8, 8, 8)
    img = Image.new("RGB", (8, 8))
    alpha = torch.stack([transform(img, seed)[1] for seed in range(4000)])
    assert alpha.mean().abs() < 0.01 and alpha.std().item() == pytest.approx(0.1, rel=0.05)
    offsets = T.colour_offsets(alpha, eigval, eigvec).flatten(1)  # (N, 3) on 0..255
    expected = 255**2 * eigvec @ torch.diag((0.1 * eigval) ** 2) @ eigvec.T
    assert torch.allclose(torch.cov(offsets.T), expected, rtol=0.1, atol=0.05)
    # The same offset for every pixel of an image; subtract_mean then centres it.
    images = torch.full((2, 3, 4, 4), 100.0)
    shifted = T.colour_shift(images, alpha[:2], eigval, eigvec)
    assert torch.allclose(shifted[:, :, 0, 0][:, :, None, None].expand(-1, -1, 4, 4), shifted)
    mean = torch.tensor(T.IMAGENET_MEAN_RGB)
    assert torch.allclose(T.subtract_mean(shifted[0], mean)[:, 1, 1], shifted[0, :, 1, 1] - mean)


def test_compute_stats_of_a_known_folder(tmp_path):
    # Half the pixels pure red, half pure blue: mean (127.5, 0, 127.5) and one
    # principal component along (1, 0, -1)/sqrt(2) with variance 0.5 (pixels in [0, 1]).
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)] * 3):
        (tmp_path / "train" / "c").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), colour).save(tmp_path / "train" / "c" / f"{i}.png")
    stats = data_stats.compute_stats(tmp_path, size=None)
    assert stats["num_images"] == 6
    assert np.allclose(stats["mean_rgb"], [127.5, 0, 127.5], atol=0.01)
    assert stats["eigval"][0] == pytest.approx(0.5, abs=1e-4)
    assert np.allclose(np.abs(np.array(stats["eigvec"])[:, 0]), [2**-0.5, 0, 2**-0.5], atol=1e-3)
    out = tmp_path / "stats.json"
    assert cli.main(["data", "stats", str(tmp_path), "--size", "0", "--output", str(out)]) == 0
    loaded = data_stats.load_stats(out)
    assert loaded["mean_rgb"] == stats["mean_rgb"] and json.loads(out.read_text())["eigvec"]


def test_convert_val_sorts_the_flat_folder(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2, 3)]
    for n in names:
        Image.new("RGB", (4, 4)).save(flat / n)
    (tmp_path / "labels.txt").write_text("".join(f"{n} n0{i % 2}\n" for i, n in enumerate(names)))
    out = tmp_path / "val"
    args = [str(flat), str(tmp_path / "labels.txt"), "--output", str(out), "--mode", "copy"]
    assert cli.main(["data", "convert-val", *args]) == 0
    assert sorted(p.name for p in (out / "n00").iterdir()) == [names[0], names[2]]
    # The devkit's ground truth: one integer per line, classes listed in --synsets.
    (tmp_path / "gt.txt").write_text("2\n1\n2\n")
    (tmp_path / "synsets.txt").write_text("n0001 tench\nn0002 goldfish\n")
    imagenet.convert_val(flat, tmp_path / "gt.txt", tmp_path / "v2", tmp_path / "synsets.txt")
    assert (tmp_path / "v2" / "n0001" / names[1]).is_symlink()
    assert len(list((tmp_path / "v2" / "n0002").iterdir())) == 2


def test_seeded_sampler_splits_one_epoch_over_ranks():
    dataset = list(range(10))
    one = list(data_images.SeededSampler(dataset, 1, 0, seed=3))
    ranks = [list(data_images.SeededSampler(dataset, 2, r, seed=3)) for r in (0, 1)]
    merged = [pair for pairs in zip(*ranks, strict=True) for pair in pairs]
    assert merged == one  # the same (index, augmentation seed) per position
    assert sorted(i for i, _ in one) == dataset
    sampler = data_images.SeededSampler(dataset, 1, 0, seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != one and list(sampler) == list(sampler)


def test_data_synth_dispatches_to_the_synth_module(tmp_path):
    out = tmp_path / "syn"
    args = ["--out", str(out), "--classes", "2", "--train-per-class", "1", "--val-per-class", "1"]
    assert cli.main(["data", "synth", *args]) == 0
    assert folders.check_classes(out) == ["arrow", "circle"]


@pytest.mark.parametrize(
    "transform",
    [
        T.TrainTransform(40, 40, 32, True, 0.1),  # fixed S: the cache holds tensors
        T.TrainTransform(40, 64, 32, True, 0.1),  # scale jittering: PIL images
        T.EvalTransform(40, 32),
    ],
    ids=["fixed-S", "jittered-S", "validation"],
)
def test_cached_decoding_gives_the_same_items(tmp_path, transform):
    """data.cache_decoded (the miniature's) changes the cost of an epoch, not its data:
    the same pixels, labels and colour shifts, bit for bit."""
    root = write_image_folder(tmp_path / "d")
    plain = data_images.ImageFolder(root / "train", transform)
    cached = data_images.ImageFolder(root / "train", transform, cache_decoded=True)
    for epoch in range(2):  # the second epoch reads the cache
        for index in range(len(plain)):
            seed = 1000 * epoch + index
            a, b = plain[(index, seed)], cached[(index, seed)]
            assert len(a) == len(b) and a[1] == b[1]
            assert all(torch.equal(x, y) for x, y in zip(a[::2], b[::2], strict=True))
    assert len(cached._cache) == len(plain)
    fixed = transform.fixed_scale is not None
    assert all(isinstance(v, torch.Tensor) == fixed for v in cached._cache.values())
    # An item never shares memory with the cache: changing it leaves the next epoch intact.
    before = cached[(0, 7)][0].clone()
    cached[(0, 7)][0].zero_()
    assert torch.equal(cached[(0, 7)][0], before)
