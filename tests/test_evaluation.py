"""Tests of the paper's test protocols (Sec. 3.2), the evaluate command and the tables."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image
from torch import nn

from vgg_repro import checkpoints, cli, models
from vgg_repro.data.images import load_image
from vgg_repro.errors import CheckpointError, ConfigError, DataError
from vgg_repro.evaluation import (
    crop_grid,
    dense_and_multi_crop,
    dense_evaluate,
    fusion,
    multi_crop,
    multi_scale,
    networks,
    preprocess,
    runner,
    scales,
    topk_error,
)
from vgg_repro.evaluation.tables import render_table


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets on a shared 2-core machine: one thread avoids OpenMP spin-waits (100x faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class HorizontalGradient(nn.Module):
    """Score map with one class per channel: x[c, i, j+1] - x[c, i, j].

    Its spatial average is ``(x[c, :, W-1] - x[c, :, 0]).mean() / (W-1)``, and the
    mirror image's is the negative of it, so flip averaging is visible in the result.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=(1, 2), groups=3, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([-1.0, 1.0]).expand(3, 1, 1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def gradient_scores(x: torch.Tensor) -> torch.Tensor:
    """HorizontalGradient's averaged score map, computed by hand."""
    w = x.shape[-1]
    return (x[..., :, w - 1] - x[..., :, 0]).mean(-1) / (w - 1)


class Recorder(nn.Module):
    """Records its inputs; scores are the channel means (a 1x1 score map)."""

    def __init__(self, crop_size: int) -> None:
        super().__init__()
        self.crop_size = crop_size
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return x.mean(dim=(2, 3), keepdim=True)


def tiny_vgg(name: str = "A", num_classes: int = 3, seed: int = 0) -> models.VGG:
    torch.manual_seed(seed)
    return models.build(name, num_classes, width=1 / 16, crop_size=32, init="xavier").eval()


# --- protocols ------------------------------------------------------------------------------


def test_dense_averages_the_score_map_and_its_mirror_image():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 13)
    s = gradient_scores(x)
    net = HorizontalGradient()
    assert torch.allclose(dense_evaluate(net, x, flip=False), s.softmax(1), atol=1e-6)
    # The mirror image's averaged gradient is -s; posteriors (not scores) are averaged.
    expected = (s.softmax(1) + (-s).softmax(1)) / 2
    assert torch.allclose(dense_evaluate(net, x), expected, atol=1e-6)
    # A vertical flip would leave s unchanged; the result must differ from that.
    assert not torch.allclose(dense_evaluate(net, x), s.softmax(1), atol=1e-3)


def test_dense_at_crop_size_equals_centre_crop_classification():
    model = tiny_vgg()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    dense = models.to_dense(model)
    with torch.no_grad():
        logits, mirrored = model(x), model(x.flip(-1))
        assert torch.allclose(dense_evaluate(dense, x, flip=False), logits.softmax(1), atol=1e-5)
        both = (logits.softmax(1) + mirrored.softmax(1)) / 2
        assert torch.allclose(dense_evaluate(dense, x), both, atol=1e-5)
        # At Q = crop size every one of the 25 crops is the whole image.
        assert torch.allclose(multi_crop(dense, x), both, atol=1e-5)
        # Centre crop of a larger image through the classifier = multi-crop's centre crop.
        big = torch.randn(1, 3, 48, 64)
        centre = big[..., 8:40, 16:48]
        assert crop_grid(48, 64, 32)[12] == (8, 16)
        assert torch.allclose(dense_evaluate(dense, centre, flip=False), model(centre).softmax(1))


def test_multi_crop_grid_has_25_positions_with_corners_centre_and_50_crops():
    h, w, c = 40, 56, 16
    rows = torch.arange(h, dtype=torch.float32).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=torch.float32).view(1, w).expand(h, w)
    image = torch.stack([rows, cols, torch.zeros(h, w)])[None]
    rec = Recorder(crop_size=c)
    posteriors = multi_crop(rec, image)
    crops = torch.cat(rec.inputs)
    assert crops.shape == (50, 3, c, c)
    plain, flipped = crops[:25], crops[25:]
    positions = [(int(k[0, 0, 0]), int(k[1, 0, 0])) for k in plain]
    # Evenly spaced from the top-left to the bottom-right corner: (40-16)/4 = 6, (56-16)/4 = 10.
    assert positions == [(t, s) for t in (0, 6, 12, 18, 24) for s in (0, 10, 20, 30, 40)]
    for corner in [(0, 0), (0, w - c), (h - c, 0), (h - c, w - c), ((h - c) // 2, (w - c) // 2)]:
        assert corner in positions
    assert torch.equal(flipped, plain.flip(-1))
    expected = torch.stack([k.mean(dim=(1, 2)).softmax(0) for k in crops]).mean(0)
    assert torch.allclose(posteriors[0], expected, atol=1e-6)


def test_multi_crop_chunks_and_batching_do_not_change_the_result():
    torch.manual_seed(2)
    dense = models.to_dense(tiny_vgg())
    x = torch.randn(3, 3, 40, 48)
    with torch.no_grad():
        whole = multi_crop(dense, x)
        assert torch.allclose(multi_crop(dense, x, chunk=7), whole, atol=1e-6)
        one_by_one = torch.cat([multi_crop(dense, x[i : i + 1]) for i in range(3)])
        assert torch.allclose(one_by_one, whole, atol=1e-5)
        both = dense_and_multi_crop(dense, x)
        assert torch.allclose(both, (dense_evaluate(dense, x) + whole) / 2, atol=1e-6)


def test_multi_scale_averages_posteriors_over_scales():
    torch.manual_seed(3)
    small, large = torch.randn(2, 3, 8, 10), torch.randn(2, 3, 12, 15)

    def by_hand(x):
        s = gradient_scores(x)
        return (s.softmax(1) + (-s).softmax(1)) / 2

    got = multi_scale(HorizontalGradient(), [small, large])
    assert torch.allclose(got, (by_hand(small) + by_hand(large)) / 2, atol=1e-6)


def test_fusion_of_a_net_with_itself_is_the_net_and_otherwise_the_mean():
    torch.manual_seed(4)
    a, b = models.to_dense(tiny_vgg(seed=0)), models.to_dense(tiny_vgg("B", seed=1))
    x = torch.randn(2, 3, 40, 36)
    with torch.no_grad():
        pa, pb = dense_evaluate(a, x), dense_evaluate(b, x)
        assert torch.allclose(fusion([a, a], x), pa, atol=1e-6)
        assert torch.allclose(fusion([a, b], x), (pa + pb) / 2, atol=1e-6)


def test_topk_error_matches_a_hand_count():
    # Sample i has its true class at rank ranks[i] (0 = most likely).
    ranks, labels = [0, 1, 4, 5, 9], [3, 7, 0, 2, 5]
    rows = []
    for rank, label in zip(ranks, labels, strict=True):
        others = [c for c in range(10) if c != label]
        order = others[:rank] + [label] + others[rank:]
        row = torch.empty(10)
        row[order] = torch.linspace(1.0, 0.1, 10)
        rows.append(row)
    p, y = torch.stack(rows), torch.tensor(labels)
    assert topk_error(p, y, 1) == pytest.approx(80.0)  # only rank 0 is a top-1 hit
    assert topk_error(p, y, 5) == pytest.approx(40.0)  # ranks 0, 1, 4 are top-5 hits


def test_ties_count_against_the_net():
    # A net that scores every class the same is never right, whatever the label;
    # topk() would have credited the images of its first k classes.
    flat = torch.full((4, 10), 0.1)
    assert topk_error(flat, torch.tensor([0, 1, 2, 9]), 1) == 100.0
    assert topk_error(flat, torch.tensor([0, 1, 2, 9]), 5) == 100.0
    tie = torch.tensor([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]])  # a tie for first place
    assert topk_error(tie, torch.tensor([0, 1]), 1) == 100.0
    assert topk_error(tie, torch.tensor([0, 1]), 2) == 0.0
    nan = torch.tensor([[float("nan"), 0.9, 0.1]])
    assert topk_error(nan, torch.tensor([1]), 5) == 100.0


def test_images_smaller_than_the_crop_are_refused():
    with pytest.raises(ConfigError, match="smaller than the training crop size 32"):
        dense_evaluate(models.to_dense(tiny_vgg()), torch.zeros(1, 3, 24, 40))
    with pytest.raises(ConfigError, match="does not fit"):
        crop_grid(20, 40, 32)


# --- test scales ----------------------------------------------------------------------------


def make_net(crop=224, train=None):
    model = models.build_meta("A", num_classes=3, width=1 / 16, crop_size=crop)
    return networks.EvalNet(model, "net.ckpt", None, (0.0, 0.0, 0.0), train_scale=train)


@pytest.mark.parametrize("train", [(256, 256), (384, 384), (256, 512)])
@pytest.mark.parametrize("kind", ["single", "multi"])
def test_presets_at_paper_scale_are_the_papers(train, kind):
    # The paper's Q (Sec. 4.1, 4.2): Q = S, or 384 for S in [256; 512] (Table 3);
    # {S - 32, S, S + 32}, or {256, 384, 512} (Table 4).
    papers = {
        ((256, 256), "single"): [256],
        ((384, 384), "single"): [384],
        ((256, 512), "single"): [384],
        ((256, 256), "multi"): [224, 256, 288],
        ((384, 384), "multi"): [352, 384, 416],
        ((256, 512), "multi"): [256, 384, 512],
    }
    assert scales.resolve_scales(kind, make_net(224, train)) == papers[(train, kind)]
    assert scales.test_scales(train, kind) == papers[(train, kind)]


def test_presets_scale_with_the_miniature_crop():
    # Offset round(32 * 64 / 224) = 9 for a 64-pixel crop; jitter uses the range itself.
    assert scales.resolve_scales("multi", make_net(64, (80, 80))) == [71, 80, 89]
    assert scales.resolve_scales("single", make_net(64, (80, 160))) == [120]
    assert scales.resolve_scales("multi", make_net(64, (80, 160))) == [80, 120, 160]
    assert scales.resolve_scales("300,256", make_net(224)) == [256, 300]


def test_bad_scales_are_refused():
    with pytest.raises(ConfigError, match="Q=200 is smaller than the training crop size 224"):
        scales.resolve_scales("200,256", make_net(224))
    with pytest.raises(ConfigError, match="does not record its training scale"):
        scales.resolve_scales("multi", make_net(224))
    with pytest.raises(ConfigError, match="integers like"):
        scales.resolve_scales("256;384", make_net(224))


# --- the folder loop and the command --------------------------------------------------------

SIZES = [(40, 53), (53, 40), (40, 53), (45, 45), (40, 53), (61, 40), (53, 40), (40, 53), (40, 70)]


def write_images(root, classes, sizes=SIZES):
    g = torch.Generator().manual_seed(5)
    for i, (h, w) in enumerate(sizes):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return root


def save_ckpt(path, model, classes, **extra):
    meta = checkpoints.model_meta(model, 1 / 16, classes) | extra
    checkpoints.atomic_save({checkpoints.META_KEY: meta, "state_dict": model.state_dict()}, path)
    return path


def by_hand(model, root, classes, scales, mean):
    """Each image alone: preprocess, dense evaluation at each scale, average; top-1 hits."""
    dense = models.to_dense(model)
    hits = {c: [] for c in sorted(classes)}
    with torch.no_grad():
        for folder in sorted(root.iterdir()):
            for f in sorted(folder.iterdir()):
                image = load_image(f)
                xs = [preprocess(image, q, mean)[None] for q in scales]
                p = torch.stack([dense_evaluate(dense, x) for x in xs]).mean(0)
                hits[folder.name].append(classes[int(p.argmax())] == folder.name)
    return hits


def test_evaluate_folder_groups_sizes_and_matches_one_image_at_a_time(tmp_path):
    names = ["cat", "ant", "bee"]  # label order of the net differs from the sorted folders
    root = write_images(tmp_path / "val", names)
    model = tiny_vgg(num_classes=3)
    mean = (120.0, 110.0, 100.0)
    path = save_ckpt(tmp_path / "a.ckpt", model, names, mean_rgb=list(mean))
    result = runner.evaluate_folder([path], root, "dense", [32, 40], batch_size=2, progress=True)
    hits = by_hand(model, root, names, [32, 40], mean)
    all_hits = [h for v in hits.values() for h in v]
    assert result["n_images"] == len(SIZES)
    assert result["top1_error"] == pytest.approx(100 * (1 - sum(all_hits) / len(all_hits)))
    assert result["top5_error"] == 0.0  # 3 classes: the true one is always in the top 5
    for c, v in hits.items():
        assert result["per_class_accuracy"][c] == pytest.approx(100 * sum(v) / len(v))
    assert result["scales"] == [32, 40]
    assert result["checkpoints"][0]["arch"] == "A"
    assert result["checkpoints"][0]["mean_rgb"] == list(mean)


def test_fusion_from_saved_posteriors_equals_fusing_the_nets(tmp_path):
    """The fuse stage averages the posteriors that the evaluate stages saved: the
    same numbers as evaluating the nets together, without running them again."""
    import numpy as np

    from vgg_repro.errors import VGGReproError
    from vgg_repro.pipeline import evaluate as evaluate_stage
    from vgg_repro.pipeline import fuse as fuse_stage

    names = ["cat", "ant", "bee"]  # the nets' label order differs from the sorted folders
    root = write_images(tmp_path / "val", names)
    mean = (120.0, 110.0, 100.0)
    torch.manual_seed(3)
    nets = [tiny_vgg(num_classes=3) for _ in range(2)]
    paths = [
        save_ckpt(tmp_path / f"{i}.ckpt", net, names, mean_rgb=list(mean))
        for i, net in enumerate(nets)
    ]
    members = []
    for i, (net, path) in enumerate(zip(nets, paths, strict=True)):
        r = runner.evaluate_folder(
            [path], root, "dense", [32, 40], batch_size=2, keep_posteriors=True
        )
        # Row i is the i-th image of find_images: sorted classes, sorted files.
        folders = sorted(names)
        assert r["files"] == [
            f"{c}/{f.name}" for c in folders for f in sorted((root / c).iterdir())
        ]
        assert r["labels"].tolist() == [folders.index(f.split("/")[0]) for f in r["files"]]
        hits = [h for v in by_hand(net, root, names, [32, 40], mean).values() for h in v]
        assert (r["posteriors"].argmax(1) == r["labels"]).tolist() == hits
        folder = tmp_path / f"posteriors{i}"
        folder.mkdir()
        for name in fuse_stage.FUSED_PROTOCOLS.values():  # as the evaluate stage saves them
            np.save(folder / f"{name}.npy", r["posteriors"].numpy())
        np.save(folder / "labels.npy", r["labels"].numpy())
        (folder / "files.txt").write_text("\n".join(r["files"]) + "\n")
        slim = evaluate_stage._slim(r, {})
        members.append(({name: slim for name in fuse_stage.FUSED_PROTOCOLS.values()}, folder))

    fused = fuse_stage.fuse_posteriors(members)
    both = runner.evaluate_folder(paths, root, "dense", [32, 40], batch_size=2)
    assert set(fused) == {"dense", "multi-crop", "dense+multi-crop"}
    for result in fused.values():
        assert result["top1_error"] == pytest.approx(both["top1_error"])
        assert result["top5_error"] == pytest.approx(both["top5_error"])
        assert result["n_images"] == len(SIZES) and result["scales"] == [32, 40]
        assert [c["path"] for c in result["checkpoints"]] == [str(p) for p in paths]

    (members[1][1] / "files.txt").write_text("ant/other.png\n")
    with pytest.raises(VGGReproError, match="different images"):
        fuse_stage.fuse_posteriors(members)
    (members[1][1] / "labels.npy").unlink()
    with pytest.raises(VGGReproError, match="cannot read the posteriors in .*posteriors1"):
        fuse_stage.fuse_posteriors(members)
    (members[1][1] / "files.txt").write_text((members[0][1] / "files.txt").read_text())
    np.save(members[1][1] / "labels.npy", np.load(members[0][1] / "labels.npy"))
    (members[1][1] / "multi-crop.npy").unlink()  # a net evaluated without Table 5's protocols
    with pytest.raises(VGGReproError, match="no multi-crop evaluation to fuse"):
        fuse_stage.fuse_posteriors(members)


def test_grouping_yields_each_image_once_in_equal_size_batches():
    items = [((torch.zeros(3, 4, 4 + i % 3),), i) for i in range(20)]
    batches = list(runner._grouped(items, batch_size=3, max_buffered=4))
    assert sorted(label for b in batches for _, label in b) == list(range(20))
    for b in batches:
        assert len(b) <= 3 and len({t[0].shape for t, _ in b}) == 1


def test_cli_writes_metrics_and_prints_the_table(tmp_path, capsys):
    names = ["ant", "bee", "cat"]
    root = write_images(tmp_path / "val", names)
    ckpt = save_ckpt(tmp_path / "a.ckpt", tiny_vgg(), names, scale_min=40, scale_max=40)
    out = tmp_path / "metrics" / "m.json"
    argv = ["evaluate", "--ckpt", str(ckpt), "--ckpt", str(ckpt), "--data", str(root)]
    argv += ["--protocol", "dense+multi-crop", "--scales", "multi", "--output", str(out)]
    assert cli.main(argv + ["--workers", "0", "--quiet"]) == 0
    metrics = json.loads(out.read_text())
    for key in ("top1_error", "top5_error", "per_class_accuracy", "protocol", "scales"):
        assert key in metrics
    # Fixed S=40 with a 32 crop: offset round(32 * 32 / 224) = 5.
    assert metrics["scales"] == [35, 40, 45] and metrics["protocol"] == "dense+multi-crop"
    assert [c["path"] for c in metrics["checkpoints"]] == [str(ckpt)] * 2
    printed = capsys.readouterr().out
    assert "| A (width 0.0625)+A (width 0.0625) | 40 | 35,40,45 | multi-crop & dense |" in printed
    assert "paper top-1" not in printed  # 3 classes: not ImageNet


def run_cli(argv, capsys):
    code = cli.main(["evaluate", *argv, "--workers", "0", "--quiet"])
    return code, capsys.readouterr().err


def test_cli_errors_are_clear(tmp_path, capsys):
    names = ["ant", "bee", "cat"]
    root = write_images(tmp_path / "val", names)
    base = ["--ckpt", str(save_ckpt(tmp_path / "a.ckpt", tiny_vgg(), names))]
    code, err = run_cli([*base, "--arch", "D", "--data", str(root), "--scales", "32"], capsys)
    assert code == 2 and "holds configuration A, not D" in err
    code, err = run_cli([*base, "--data", str(root), "--scales", "16,32"], capsys)
    assert code == 2 and "Q=16 is smaller than the training crop size 32" in err
    (tmp_path / "empty").mkdir()
    code, err = run_cli([*base, "--data", str(tmp_path / "empty"), "--scales", "32"], capsys)
    assert code == 2 and "has no class folders" in err
    (tmp_path / "noimg" / "ant").mkdir(parents=True)
    code, err = run_cli([*base, "--data", str(tmp_path / "noimg"), "--scales", "32"], capsys)
    assert code == 2 and "no images" in err


def test_class_folders_must_match_the_checkpoint(tmp_path):
    root = write_images(tmp_path / "val", ["ant", "bee", "dog"])
    ckpt = save_ckpt(tmp_path / "a.ckpt", tiny_vgg(), ["ant", "bee", "cat"])
    with pytest.raises(
        DataError, match=r"1 folders are not among its 3 classes \(first: \['dog'\]"
    ):
        runner.evaluate_folder([ckpt], root, "dense", [32])
    # A subset of the net's classes maps to their outputs (the soft-max over them).
    subset = write_images(tmp_path / "subset", ["ant", "bee"])
    result = runner.evaluate_folder([ckpt], subset, "dense", [32])
    assert result["num_classes"] == 2
    other = save_ckpt(tmp_path / "d.ckpt", tiny_vgg(), ["ant", "bee", "dog"])
    with pytest.raises(CheckpointError, match="holds configuration A, not E"):
        networks.load_network(other, "E")


def test_training_scale_and_mean_from_a_lightning_checkpoint(tmp_path):
    model = tiny_vgg()
    stats = {"mean_rgb": [1, 2, 3], "eigval": [1, 1, 1], "eigvec": [[1, 0, 0]] * 3}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    data_args = {"scale_min": 40, "scale_max": 80, "stats": str(tmp_path / "stats.json")}
    ckpt = {
        checkpoints.META_KEY: checkpoints.model_meta(model, 1 / 16, ["a", "b", "c"]),
        "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
        "datamodule_hyper_parameters": data_args,
    }
    checkpoints.atomic_save(ckpt, tmp_path / "last.ckpt")
    net = networks.load_network(tmp_path / "last.ckpt")
    assert net.train_scale == (40, 80) and net.mean_rgb == (1, 2, 3)
    assert scales.resolve_scales("multi", net) == [40, 60, 80]
    (tmp_path / "stats.json").unlink()
    with pytest.raises(CheckpointError, match="trained with the mean RGB of .*stats.json"):
        networks.load_network(tmp_path / "last.ckpt")


def test_corrupt_image_names_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg"):
        load_image(bad)


# --- tables ---------------------------------------------------------------------------------


def result(archs, train, scales, protocol="dense", top1=25.0, top5=8.0, classes=1000, width=1.0):
    ckpts = [
        {"arch": a, "width": width, "train_scale": train, "test_scales": scales} for a in archs
    ]
    return {
        "checkpoints": ckpts,
        "protocol": protocol,
        "scales": scales,
        "top1_error": top1,
        "top5_error": top5,
        "num_classes": classes,
    }


def test_table_renders_in_the_papers_layout_with_its_numbers():
    jitter, multi = [256, 512], [256, 384, 512]
    table = render_table(
        [
            result(["D", "E"], jitter, multi, "dense+multi-crop", 23.81, 6.94),
            result(["E"], [256, 256], [224, 256, 288], top1=27.04),
            result(["D"], jitter, multi, "multi-crop"),
            result(["D"], [256, 256], [256], top1=27.12, top5=8.96),
        ]
    )
    lines = table.splitlines()
    assert lines[0].startswith("| ConvNet config. | train (S) | test (Q) | method |")
    assert lines[2] == "| D | 256 | 256 | dense | 27.1 | 9.0 | 27.0 | 8.8 | Table 3 |"
    assert lines[3] == (
        "| D | [256;512] | 256,384,512 | multi-crop | 25.0 | 8.0 | 24.6 | 7.5 | Table 5 |"
    )
    assert lines[4] == "| E | 256 | 224,256,288 | dense | 27.0 | 8.0 | 26.9 | 8.7 | Table 4 |"
    assert lines[5] == (
        "| D+E | [256;512] | 256,384,512 | multi-crop & dense | 23.8 | 6.9 | 23.7 | 6.8 | Table 6 |"
    )


def test_table_without_paper_numbers_off_imagenet_or_for_narrow_nets():
    table = render_table([result(["D"], [256, 256], [256], classes=10)])
    assert "paper" not in table and "| D | 256 | 256 | dense | 25.0 | 8.0 |" in table
    narrow = render_table([result(["D"], [256, 256], [256], width=0.25)])
    assert "| D (width 0.25) | 256 | 256 | dense | 25.0 | 8.0 |  |  |  |" in narrow
    tv = result(["D"], None, [256])
    tv["checkpoints"][0]["path"] = "torchvision:vgg16:vgg16.pth"
    assert "| D (torchvision) | ? | 256 | dense | 25.0 | 8.0 |  |  |  |" in render_table([tv])


def test_evaluation_runs_channels_last_convolutions_in_bfloat16_when_asked(tmp_path):
    """Issue 7: the fast path (the default on a GPU) as it runs on a CPU when asked; the
    CPU's default is float32, channels-last too (faster with oneDNN)."""
    names = ["ant", "bee", "cat"]
    root = write_images(tmp_path / "val", names)
    path = save_ckpt(tmp_path / "a.ckpt", tiny_vgg(), names)
    seen = []
    for precision in (None, "bf16"):
        net = networks.load_network(path)
        conv = next(m for m in net.model.modules() if isinstance(m, nn.Conv2d))
        hook = conv.register_forward_hook(
            lambda m, args, out: seen.append(
                (out.dtype, args[0].is_contiguous(memory_format=torch.channels_last))
            )
        )
        result = runner.evaluate_folder([net], root, "dense", [32], precision=precision)
        hook.remove()
        assert result["precision"] == (precision or "32")  # the CPU default: float32
        assert math.isfinite(result["top1_error"])
        kinds = set(seen)
        seen.clear()
        if precision is None:
            assert kinds == {(torch.float32, True)}
        else:
            assert kinds == {(torch.bfloat16, True)}
    with pytest.raises(ConfigError, match="precision 'fp8'"):
        runner.evaluate_folder([path], root, "dense", [32], precision="fp8")


def test_bf16_posteriors_agree_with_float32():
    model = tiny_vgg(num_classes=5).eval()
    with torch.no_grad():
        model.classifier[-1].weight.mul_(50)  # peaked posteriors, as a trained net gives
    dense = models.to_dense(model)
    x = torch.rand(4, 3, 40, 48) * 2 - 1
    with torch.no_grad():
        full = dense_evaluate(dense, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = dense_evaluate(dense.to(memory_format=torch.channels_last), x)
    assert fast.dtype == torch.float32  # soft-max and averaging stay in float32
    assert torch.allclose(fast.sum(1), torch.ones(4))
    assert (fast - full).abs().max() < 0.05
