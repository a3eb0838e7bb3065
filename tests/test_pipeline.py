"""The DVC pipeline: the synthetic dataset, the data pin, the stage graph, the report,
and `dvc repro` end to end on a fresh clone (smoke profile, offline)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vgg_repro.data import synth
from vgg_repro.errors import ConfigError, DataError, VGGReproError
from vgg_repro.pipeline import check_data, claims, common, report
from vgg_repro.pipeline import evaluate as evaluate_stage
from vgg_repro.pipeline import train as train_stage

ROOT = Path(__file__).resolve().parents[1]

# What a rerun may change in a clone, per the docs (docs/reproduce.rst): the lock
# file's checkpoint and metric hashes, the metrics and the reports. The test
# itself edits params.yaml to choose the smoke profile.
MAY_CHANGE = re.compile(r"^(dvc\.lock|params\.yaml|metrics/.*\.json|reports/.*)$")


# --- the synthetic dataset --------------------------------------------------------------


def test_synth_is_deterministic_and_seeded():
    kw = {"min_side": 40, "max_side": 60}
    a = np.asarray(synth.draw_image(7, "train", 3, 5, **kw))
    b = np.asarray(synth.draw_image(7, "train", 3, 5, **kw))
    c = np.asarray(synth.draw_image(8, "train", 3, 5, **kw))
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert 40 <= min(a.shape[:2]) <= 60 and a.shape[2] == 3


def test_synth_layout(tmp_path):
    n = synth.generate(
        tmp_path,
        seed=1,
        train_per_class=3,
        val_per_class=2,
        num_classes=4,
        min_side=40,
        max_side=56,
    )
    assert n == 4 * (3 + 2)
    for split, per_class in (("train", 3), ("val", 2)):
        classes = sorted(p.name for p in (tmp_path / split).iterdir())
        assert classes == sorted(synth.CLASSES[:4])
        for c in classes:
            files = sorted((tmp_path / split / c).glob("*.jpg"))
            assert len(files) == per_class
    sizes = set()
    for f in tmp_path.rglob("*.jpg"):
        with Image.open(f) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert 40 <= min(img.size) <= 56
            sizes.add(img.size)
    assert len(sizes) > 5  # varied sizes and aspect ratios
    # A small run draws exactly the first images of a larger one.
    again = tmp_path / "again"
    synth.generate(
        again, seed=1, train_per_class=1, val_per_class=1, num_classes=4, min_side=40, max_side=56
    )
    first = next((again / "train" / synth.CLASSES[0]).glob("*.jpg")).name
    with (
        Image.open(again / "train" / synth.CLASSES[0] / first) as x,
        Image.open(tmp_path / "train" / synth.CLASSES[0] / first) as y,
    ):
        assert x.size == y.size


def test_synth_object_scale_and_contrast_are_checked():
    with pytest.raises(ConfigError, match="min_object"):
        synth.generate("unused", min_object=0.9, max_object=0.3)
    with pytest.raises(ConfigError, match="contrast"):
        synth.generate("unused", contrast=300)


def test_synth_object_stands_out_by_brightness():
    """The object's colour differs in brightness from the background around it."""
    rng = np.random.default_rng(0)
    luma = np.array([0.299, 0.587, 0.114])
    gaps = []
    for _ in range(400):
        around = rng.uniform(0, 255, size=3)
        gaps.append(abs(luma @ np.asarray(synth.object_colour(rng, around, 100.0)) - luma @ around))
    # Drawn until it stands out, at most 50 times: mostly by the contrast asked for (a
    # single random colour would be 100 grey levels off a random surround in about 1 in 4).
    assert np.mean(np.array(gaps) > 100.0) > 0.9


def test_sample_grid_shows_every_class(tmp_path):
    synth.generate(tmp_path, seed=1, train_per_class=1, val_per_class=3, num_classes=4)
    grid = synth.sample_grid(tmp_path, per_class=3, cell=20)
    assert grid.size == (3 * 22 - 2, 4 * 22 - 2)
    first = np.asarray(Image.open(sorted((tmp_path / "val" / "arrow").glob("*.jpg"))[0]))
    assert np.asarray(grid)[:20, :20].std() > 0 and first.std() > 0
    with pytest.raises(ConfigError, match="fewer than 5"):
        synth.sample_grid(tmp_path, per_class=5)
    with pytest.raises(ConfigError, match="has no class folders"):
        synth.sample_grid(tmp_path / "nowhere")


def test_committed_dataset_layout():
    root = ROOT / "data" / "miniature"
    if not root.is_dir():
        pytest.skip("data/miniature is not in this checkout")
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total < 20 * 2**20
    for split in ("train", "val"):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(synth.CLASSES)


# --- the data pin -----------------------------------------------------------------------


def _dvc_md5(tmp_path: Path, folder: Path) -> str:
    """The folder's hash as DVC itself computes it."""
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "add", "-q", folder.name], cwd=tmp_path, check=True)
    spec = yaml.safe_load((tmp_path / f"{folder.name}.dvc").read_text())
    return spec["outs"][0]["md5"]


def test_dir_md5_equals_dvc(tmp_path):
    folder = tmp_path / "d"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "x.txt").write_text("x")
    (folder / "a" / "b" / "y.bin").write_bytes(bytes(range(256)))
    (folder / "z.txt").write_text("zz\n")
    md5, n = check_data.dir_md5(folder)
    assert n == 3
    assert md5 == _dvc_md5(tmp_path, folder)


def _pinned_repo(tmp_path: Path) -> dict:
    synth.generate(
        tmp_path / "src",
        seed=3,
        train_per_class=2,
        val_per_class=1,
        num_classes=3,
        min_side=40,
        max_side=48,
    )
    shutil.copytree(tmp_path / "src", tmp_path / "pinned")
    md5, _ = check_data.dir_md5(tmp_path / "src")
    pins = {"pins": {"miniature": {"source": "src", "copy": "pinned", "md5": md5}}}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pins.yaml").write_text("# pinned\n" + yaml.safe_dump(pins))
    return {"data": "pinned", "pinned": True}


def test_check_data_refuses_changed_data_and_pin_data_accepts_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profile = _pinned_repo(tmp_path)
    info = check_data.check_data(profile)
    assert info["classes"] == sorted(synth.CLASSES[:3]) and info["images"]["train"] == 6
    # copy_data copies a changed source like any other; the check must refuse it.
    img = next((tmp_path / "src" / "train").rglob("*.jpg"))
    Image.new("RGB", (50, 40), "red").save(img)
    shutil.rmtree(tmp_path / "pinned")
    shutil.copytree(tmp_path / "src", tmp_path / "pinned")
    with pytest.raises(DataError, match="pin-data") as err:
        check_data.check_data(profile)
    assert "differs from the one pinned" in str(err.value)
    new = check_data.pin_data()
    pins = (tmp_path / "data" / "pins.yaml").read_text()
    assert yaml.safe_load(pins)["pins"]["miniature"]["md5"] == new
    assert pins.startswith("# pinned\n")  # only the md5 line changed
    assert check_data.check_data(profile)["md5"] == new


def test_check_data_names_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="profiles.<profile>.data"):
        check_data.check_data({"data": "nowhere", "pinned": False})


# --- the stage graph --------------------------------------------------------------------


def test_dvc_yaml_mirrors_the_experiment_graph():
    """Every row of Table 3 is trained once, from its parent (Sec. 3.1), and evaluated."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    trained = {}
    for name, row in (
        ("train_scratch", "s256"),
        ("train_s256", "s256"),
        ("train_s384", "s384"),
        ("train_jitter", "jitter"),
    ):
        items = spec[name]["foreach"]
        for net in items:
            deps = [
                d.replace("${item}", net).replace("${key}", net) for d in spec[name]["do"]["deps"]
            ]
            trained[(net, row)] = {d for d in deps if d.endswith("model.pt")}
    assert set(trained) == set(common.ROWS)
    for key, parent in common.PARENTS.items():
        expected = {str(common.model_path(*parent[1]))} if parent else set()
        assert trained[key] == expected, key
    evaluated = {(v["net"], v["row"]) for v in spec["evaluate"]["foreach"].values()}
    assert evaluated == set(common.ROWS)
    report_deps = set(spec["report"]["deps"])
    assert {str(common.metrics_path(*k)) for k in common.ROWS} <= report_deps


def test_paper_profile_trains_and_evaluates_row_a_at_full_size(tmp_path, monkeypatch):
    """The paper profile, which no CPU can run, exercised as far as a CPU can: the
    stage functions train row A with the paper's own config (width 1, 224-pixel
    crops, S = 256, bf16) for one step and evaluate it at Q = 224, 256, 288.
    Changed from params.yaml: the data (a tiny folder in ImageNet's layout), one
    epoch, a batch of its 4 images instead of 256, the CPU instead of the GPUs."""
    from vgg_repro import checkpoints

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    profile = params["profiles"]["paper"]
    assert profile["config"] is None  # each row's own config, unscaled
    monkeypatch.chdir(tmp_path)
    synth.generate(
        tmp_path / "imagenet",
        seed=1,
        train_per_class=2,
        val_per_class=1,
        num_classes=2,
        min_side=64,
        max_side=80,
    )
    profile["data"] = str(tmp_path / "imagenet")
    profile["train"]["epochs"]["scratch"] = 1
    profile["train"]["batch_size"] = 4
    profile["train"]["hardware"] = {"accelerator": "cpu", "devices": 1, "num_workers": 0}
    profile["evaluate"] = {"device": "cpu", "batch_size": 2, "workers": 0}
    info = check_data.check_data(profile)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "data.json").write_text(json.dumps(info))

    train_stage.train("A", "s256", profile)
    ckpt = checkpoints.load_checkpoint(tmp_path / "models" / "A" / "s256" / "model.pt")
    meta = checkpoints.checkpoint_meta(ckpt)
    assert (meta["arch"], meta["width"], meta["crop_size"]) == ("A", 1.0, 224)
    assert meta["num_classes"] == 2 and (meta["scale_min"], meta["scale_max"]) == (256, 256)
    assert ckpt["state_dict"]["features.0.weight"].shape == (64, 3, 3, 3)  # Table 1: conv3-64

    evaluate_stage.evaluate("A", "s256", profile)
    metrics = json.loads((tmp_path / "metrics" / "A-s256.json").read_text())
    assert metrics["single-scale"]["scales"] == [256]
    assert metrics["multi-scale"]["scales"] == [224, 256, 288]  # {S - 32, S, S + 32}
    assert all(math.isfinite(m["top1_error"]) and m["n_images"] == 2 for m in metrics.values())


def test_profiles_follow_the_scaling_rule(capsys):
    """A profile is laid over a row by LightningCLI's merging: the row's paper sizes,
    scaled by crop/224 (data.reference_crop_size), its net, rate and parent."""
    from vgg_repro import training
    from vgg_repro.data.transforms import scaled_size

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["profile"] == "miniature"
    assert {"miniature", "smoke", "paper"} <= set(params["profiles"])
    argv = train_stage.train_argv("D", "jitter", params["profiles"]["miniature"], Path("x"))
    assert argv[:5] == ["fit", "--config", "D_jitter", "--config", "miniature"]
    assert "--model.finetune_from=models/D/s384/model.pt" in argv
    with pytest.raises(SystemExit):
        training.main([*argv, "--print_config"])
    merged = yaml.safe_load(capsys.readouterr().out)
    paper = yaml.safe_load(Path(training.resolve_config("D_jitter")).read_text())
    lo, hi = paper["data"]["scale_min"], paper["data"]["scale_max"]
    crop, ref = merged["data"]["crop_size"], merged["data"]["reference_crop_size"]
    assert (crop, ref) == (32, 224) and [lo, hi] == [256, 512]
    assert [scaled_size(s, crop, ref) for s in (lo, hi)] == [37, 73]
    assert merged["model"]["arch"] == "D" and merged["model"]["lr"] == 0.001
    train = params["profiles"]["miniature"]["train"]
    assert merged["model"]["width"] == 0.0625
    assert merged["trainer"]["max_epochs"] == train["epochs"]["jitter"]
    assert merged["model"]["dropout"] == train["overrides"]["model.dropout"]
    assert merged["seed_everything"] == train["seed"]
    paper_argv = train_stage.train_argv("D", "jitter", params["profiles"]["paper"], Path("x"))
    assert paper_argv[:3] == ["fit", "--config", "D_jitter"]
    assert "--config" not in paper_argv[3:]
    assert not any(a.startswith(("--data.scale", "--model.width")) for a in paper_argv)


# --- the report -------------------------------------------------------------------------


N_VAL = 1500  # validation images of the synthetic results below


def _entry(arch, s, protocol, scales, top1, n=N_VAL):
    return {
        "top1_error": top1,
        "top5_error": top1 / 3,
        "protocol": protocol,
        "scales": scales,
        "n_images": n,
        "num_classes": 10,
        "checkpoints": [
            {"arch": arch, "width": 0.0625, "train_scale": s, "test_scales": scales, "path": "x"}
        ],
    }


def _metrics(better_deep: bool) -> dict:
    s = {"s256": [37, 37], "s384": [55, 55], "jitter": [37, 73]}
    m = {}
    base = {"A": 50.0, "A-LRN": 51.0, "B": 45.0, "C": 42.0, "D": 40.0, "E": 39.0}
    for net, row in common.ROWS:
        e = base[net] if better_deep else 60.0 - base[net] + 30.0
        e -= {"s256": 0, "s384": 0.5, "jitter": 3.0}[row]
        m[f"{net}-{row}"] = {
            "single-scale": _entry(net, s[row], "dense", [s[row][0]], e),
            "multi-scale": _entry(net, s[row], "dense", [32, 37, 42], e - 1),
        }
        if (net, row) in common.MULTI_CROP_ROWS:
            m[f"{net}-{row}"]["multi-crop"] = _entry(
                net, s[row], "multi-crop", [37, 55, 73], e - 1.6
            )
            m[f"{net}-{row}"]["dense+multi-crop"] = _entry(
                net, s[row], "dense+multi-crop", [37, 55, 73], e - 2
            )
    fused = [_entry("D", s["jitter"], p, [37, 55, 73], 30.0) for p in ("dense", "multi-crop")]
    combo = _entry("D", s["jitter"], "dense+multi-crop", [37, 55, 73], 29.0)
    for r in (*fused, combo):
        r["checkpoints"].append(dict(r["checkpoints"][0], arch="E"))
    m["fusion-D+E"] = {"dense": fused[0], "multi-crop": fused[1], "dense+multi-crop": combo}
    return m


def _correct(metrics: dict, n: int = N_VAL) -> dict:
    """Per-image top-1 correctness matching each error, nested: a net with a lower
    error is right on every image a worse one gets right (the strongest pairing)."""
    return {
        (stem, setting): np.arange(n) >= round(n * entry["top1_error"] / 100)
        for stem, entries in metrics.items()
        for setting, entry in entries.items()
    }


def _write_posteriors(root: Path, metrics: dict, n: int = N_VAL) -> None:
    """The posteriors files of the evaluate and fuse stages, for ``_correct``'s answers."""
    labels = np.arange(n) % 10
    for (stem, setting), right in _correct(metrics, n).items():
        folder = root / "posteriors" / stem
        folder.mkdir(parents=True, exist_ok=True)
        guess = np.where(right, labels, (labels + 1) % 10)
        np.save(folder / f"{setting}.npy", np.eye(10, dtype=np.float32)[guess])
        np.save(folder / "labels.npy", labels)
        (folder / "files.txt").write_text("".join(f"c{i % 10}/{i}.png\n" for i in range(n)))


def test_claims_follow_the_numbers():
    metrics = _metrics(better_deep=True)
    good = {c["id"]: c for c in claims.check_claims(metrics, _correct(metrics))}
    # Without the transfer stage's results, Appendix B's claims are left out (they
    # are tested in test_descriptors.py).
    assert set(good) == {c.id for c in claims.CLAIMS if not c.id.startswith("transfer")}
    assert all(c["holds"] and c["verdict"] == "agrees" for c in good.values()), good
    # The paper's A-LRN, from vgg_repro.paper.
    assert "29.7" in claims.format_evidence(good["lrn"]["paper"])
    metrics = _metrics(better_deep=False)
    bad = {c["id"]: c for c in claims.check_claims(metrics, _correct(metrics))}
    assert not bad["depth"]["holds"] and not bad["lrn"]["holds"]
    assert bad["depth"]["verdict"] == "disagrees" and bad["lrn"]["verdict"] == "disagrees"


def test_report_renders_all_three_verdicts():
    metrics = _metrics(better_deep=True)
    # A-LRN as good as A: no difference to test (inconclusive); C better than D at
    # every S: the 1x1 claim disagrees; the rest agrees.
    metrics["A-LRN-s256"]["single-scale"]["top1_error"] = 50.0
    for row in ("s256", "s384", "jitter"):
        metrics[f"C-{row}"]["single-scale"]["top1_error"] = 30.0
        metrics[f"C-{row}"]["multi-scale"]["top1_error"] = 29.0
    found = {c["id"]: c for c in claims.check_claims(metrics, _correct(metrics))}
    assert found["lrn"]["verdict"] == "inconclusive"
    assert found["one_by_one"]["verdict"] == "disagrees"
    assert found["fusion"]["verdict"] == "agrees"
    md = report.render_markdown("miniature", {"classes": []}, metrics, list(found.values()))
    for cid, verdict in (
        ("lrn", "inconclusive"),
        ("one_by_one", "disagrees"),
        ("fusion", "agrees"),
    ):
        assert any(line.startswith(f"| {cid} | {verdict} |") for line in md.splitlines()), cid
    counts = {v: sum(c["verdict"] == v for c in found.values()) for v in claims.VERDICTS}
    assert counts["disagrees"] >= 1 and counts["inconclusive"] >= 1
    assert f"{counts['disagrees']} disagree and {counts['inconclusive']} are inconclusive" in md
    lrn = next(e for e in found["lrn"]["ours"] if e["kind"] == "comparison")
    assert (lrn["difference"], lrn["p"]) == (0.0, 1.0) and lrn["low"] <= 0 <= lrn["high"]


def test_training_summary_reads_how_a_run_ended():
    def ckpt(epoch, decreases, most):
        return {
            "epoch": epoch,
            "callbacks": {"PlateauSchedule": {"scheduler": {}, "decreases": decreases}},
            "hyper_parameters": {"max_lr_decreases": most},
        }

    assert train_stage.training_summary(ckpt(29, 2, 1)) == {
        "epochs": 30, "lr_decreases": 1, "plateau": True,
    }  # fmt: skip
    assert train_stage.training_summary(ckpt(39, 1, 1))["plateau"] is False
    assert train_stage.training_summary(ckpt(7, 0, 3))["lr_decreases"] == 0


def test_profile_seed_reaches_the_command_line(tmp_path):
    profile = {"train": {"seed": 3, "overrides": {"model.dropout": 0.0}}}
    argv = train_stage.train_argv("A", "s256", profile, tmp_path)
    assert "--seed_everything=3" in argv and "--model.dropout=0.0" in argv


def test_deviations_take_their_value_from_the_overrides():
    profile = {
        "train": {"overrides": {"model.dropout": 0.0}},
        "deviations": {"model.dropout": {"paper": 0.5, "why": "measured"}},
    }
    assert report.stated_deviations(profile) == {
        "model.dropout": {"value": 0.0, "paper": 0.5, "why": "measured"}
    }
    with pytest.raises(ConfigError, match="deviations.model.dropout needs 'paper' and 'why'"):
        report.stated_deviations(dict(profile, deviations={"model.dropout": {"paper": 0.5}}))
    profile["deviations"]["model.lr"] = {"paper": 0.01, "why": "x"}
    with pytest.raises(ConfigError, match="deviations.model.lr explains a setting"):
        report.stated_deviations(profile)


def test_shipped_deviations_are_all_overridden():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, profile in params["profiles"].items():
        assert "deviations" in profile, name  # the report stage reads the key
        report.stated_deviations(profile)


def test_report_states_training_deviations_and_geometry():
    metrics = _metrics(better_deep=True)
    for stem, entries in metrics.items():
        for entry in entries.values():
            for c in entry["checkpoints"]:
                c["crop_size"] = 32
                c["training"] = {"epochs": 12, "lr_decreases": 1, "plateau": stem != "E-s256"}
    metrics["A-s256"]["single-scale"]["top1_error"] = 12.5
    found = claims.check_claims(metrics, _correct(metrics))
    deviations = {"model.dropout": {"value": 0.0, "paper": 0.5, "why": "87.0% against 29.4%"}}
    md = report.render_markdown("miniature", {"classes": []}, metrics, found, deviations)
    lines = md.splitlines()
    assert "| A-s256 | 12 | 1 | plateau | 12.5 |" in lines  # the single-scale error
    assert any(line.startswith("| E-s256 | 12 | 1 | epoch budget |") for line in lines)
    assert "| `model.dropout` | 0.0 | 0.5 | 87.0% against 29.4% |" in lines
    # Q = 37 on a 4:3 image: a 1x1 score map that sees 32 of its 37 rows, 25 distinct crops.
    assert "| 37 | 1x1 | 86% | 25 |" in lines


def test_report_writes_results_in_the_contract_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    metrics = _metrics(True)
    for stem, entries in metrics.items():
        (tmp_path / "metrics" / f"{stem}.json").write_text(json.dumps(entries))
    _write_posteriors(tmp_path, metrics)
    (tmp_path / "models").mkdir()
    info = {
        "root": "data/pinned",
        "source": "data/miniature",
        "md5": "x.dir",
        "classes": list(synth.CLASSES),
        "images": {"train": 1, "val": 500},
    }
    (tmp_path / "models" / "data.json").write_text(json.dumps(info))
    results = report.write_report("miniature")
    saved = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert saved == results
    assert saved["profile"] == "miniature" and saved["num_classes"] == 10
    assert saved["dataset"] == "miniature"
    # Typed fields: nets as a list, S as [lo, hi], the paper's figure for the same setting.
    row = next(
        r
        for r in saved["rows"]
        if r["nets"] == ["D"] and r["train_scale"] == [37, 73] and r["setting"] == "single-scale"
    )
    assert set(row) == {
        "nets", "row", "setting", "train_scale", "protocol", "test_scales",
        "top1_error", "top5_error", "std_error", "n_images", "paper",
    }  # fmt: skip
    assert (row["row"], row["protocol"], row["test_scales"]) == ("jitter", "dense", [37])
    assert row["paper"] == {"table": "Table 3", "top1_error": 25.6, "top5_error": 8.1}
    fused = [r for r in saved["rows"] if r["nets"] == ["D", "E"]]
    assert {r["protocol"] for r in fused} == {"dense", "multi-crop", "dense+multi-crop"}
    best = next(r for r in fused if r["protocol"] == "dense+multi-crop")
    assert best["paper"] == {"table": "Table 6", "top1_error": 23.7, "top5_error": 6.8}
    assert all(isinstance(c["ours"], list) and c["ours"] for c in saved["claims"])
    md = (tmp_path / "reports" / "report.md").read_text()
    for table in ("Table 3", "Table 4", "Table 5", "Table 6"):
        assert table in md
    depth = (tmp_path / "reports" / "depth.csv").read_text().splitlines()
    assert depth[0] == "net,weight_layers,top1_error,top5_error" and len(depth) == 7


# --- dvc repro end to end ---------------------------------------------------------------


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-6000:]}"
    return out


def _assert_plots_render_offline(page: Path) -> None:
    """The page of `dvc plots show` loads nothing from the network and, in Chromium (if
    installed), draws every plot: each image loaded, each SVG with marks in it."""
    html = page.read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html), "network needed"
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 3
    for src in images:
        svg = (page.parent / src).read_text()
        assert svg.count("<path") > 10, src  # axes, lines, bars: marks, not a blank page
    chromium, driver_path = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (chromium.exists() and driver_path.exists()):
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
    try:
        driver.get(page.as_uri())
        drawn = driver.execute_script(
            "return [...document.images].map(i => i.complete && i.naturalWidth > 0)"
        )
        assert drawn == [True, True, True], drawn
    finally:
        driver.quit()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git repository")
@pytest.mark.skipif(shutil.which("dvc") is None, reason="needs dvc")
def test_dvc_repro_smoke_on_a_fresh_clone(tmp_path):
    """The README's main job, on the smoke profile: every stage runs, offline, from a clone."""
    repo = tmp_path / "repo"
    env = dict(
        os.environ,
        DVC_NO_ANALYTICS="1",
        no_proxy="*",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    if not (repo / "dvc.yaml").is_file() or not (repo / "data" / "miniature").is_dir():
        pytest.skip("the pipeline is not committed yet")
    params = repo / "params.yaml"
    params.write_text(re.sub(r"(?m)^profile:.*$", "profile: smoke", params.read_text()))
    pins = (repo / "data" / "pins.yaml").read_text()

    out = _run(["dvc", "repro"], repo, env)
    stages = _run(["dvc", "stage", "list", "--all", "--name-only"], repo, env).split()
    # copies, check, trainings, evaluations, fuse, transfer (Appendix B), figures, report
    assert len(stages) == 2 + 1 + 12 + 12 + 1 + 1 + 1 + 1
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert set(stages) <= set(lock)
    for stage in stages:
        assert f"Running stage '{stage}'" in out, stage
    # A quiet log that says where it is: each stage names itself and its place, each
    # training epoch is one line, Lightning's advertisement and its empty FLOPs count
    # are gone, and the run ends by naming its report.
    assert "stage 1 of 31: copy_data@miniature" in out and "stage 31 of 31: report" in out
    assert "stage 3 of 31: check_data" in out and "stage 6 of 31: train_s256@B" in out
    assert re.search(r"epoch 1/1: loss [0-9.]+, val top-1 error [0-9.]+%, lr ", out)
    assert "Tip" not in out and "litlogger" not in out and "FLOPs" not in out
    assert "LeafSpec" not in out
    assert "Report: reports/report.md" in out and "git diff reports/" in out
    # DVC's own views fit a terminal and render offline.
    shown = _run(["dvc", "metrics", "show"], repo, env)
    assert max(len(line) for line in shown.splitlines()) <= 120, shown
    assert "metrics/summary/claim-depth.json" in shown and "metrics/D-jitter.json" not in shown
    _run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo, env)
    _assert_plots_render_offline(tmp_path / "plots" / "index.html")

    results = json.loads((repo / "reports" / "results.json").read_text())
    assert results["profile"] == "smoke" and len(results["rows"]) >= 12 * 2 + 4 + 3
    for row in results["rows"]:
        assert math.isfinite(row["top1_error"]) and math.isfinite(row["top5_error"])
    assert {c["id"] for c in results["claims"]} == {c.id for c in claims.CLAIMS}
    assert (repo / "reports" / "report.md").read_text().startswith("# Results of the `smoke`")
    for metrics in (repo / "metrics").glob("*.json"):
        for entry in json.loads(metrics.read_text()).values():
            assert math.isfinite(entry["top1_error"])
    assert (repo / "models" / "E" / "jitter" / "model.pt").is_file()
    # Appendix B on the data no net was trained on: every descriptor and its claims.
    names = [r["descriptor"] for r in results["transfer"]]
    assert names == ["A", "B", "C", "D", "E", "D+E", "pixels"]
    assert all(0 <= r["value"] <= 100 for r in results["transfer"])
    assert "## Table 11" in (repo / "reports" / "report.md").read_text()

    # Issue 8: the seed and the library versions are recorded in the run's outputs:
    # each model.pt, each metrics file (from the model it evaluated), the report.
    import torch

    from vgg_repro import checkpoints

    seed = yaml.safe_load((ROOT / "vgg_repro" / "configs" / "recipe.yaml").read_text())
    seed = seed["seed_everything"]
    meta = checkpoints.checkpoint_meta(
        checkpoints.load_checkpoint(repo / "models" / "E" / "jitter" / "model.pt")
    )
    assert meta["seed"] == seed
    assert meta["environment"]["versions"]["torch"] == torch.__version__
    assert set(common.LIBRARIES) | {"python", "cuda", "cudnn"} == set(
        meta["environment"]["versions"]
    )
    for metrics in (repo / "metrics").glob("*.json"):
        for entry in json.loads(metrics.read_text()).values():
            for ckpt in entry["checkpoints"]:
                assert ckpt["seed"] == seed and ckpt["environment"] == meta["environment"]
    assert results["training"] == {"seeds": [seed], "environments": [meta["environment"]]}
    assert f"| torch | {torch.__version__} |" in (repo / "reports" / "report.md").read_text()

    assert (repo / "data" / "pins.yaml").read_text() == pins
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    changed = [line[3:] for line in status.splitlines()]
    assert all(MAY_CHANGE.match(p) for p in changed), changed

    again = _run(["dvc", "repro"], repo, env)
    assert "Running stage" not in again and "Data and pipelines are up to date" in again

    # Issue 8: a second full run on the same machine gives identical metrics files.
    pinned = sorted((repo / "metrics").glob("*.json")) + [repo / "reports" / "results.json"]
    pinned.append(repo / "metrics" / "transfer" / "table11.json")
    first = {p.name: p.read_bytes() for p in pinned}
    _run(["dvc", "repro", "--force"], repo, env)
    assert {p.name: p.read_bytes() for p in pinned} == first

    # Issue 12: an edit to the fuse stage's code reruns the fusion and what reads its
    # output, and no training or evaluation.
    fuse_code = repo / "vgg_repro" / "pipeline" / "fuse.py"
    fuse_code.write_text(fuse_code.read_text() + "\n# an edit\n")
    stale = _run(["dvc", "status"], repo, env)
    stale_stages = {line.strip().rstrip(":") for line in stale.splitlines() if line.endswith(":")}
    assert "fuse" in stale_stages, stale
    assert not any(s.startswith(("train", "evaluate", "check_data")) for s in stale_stages), stale
    out = _run(["dvc", "repro"], repo, env)
    assert "Running stage 'fuse'" in out
    assert "Running stage 'train" not in out and "Running stage 'evaluate" not in out


def test_summary_metrics_are_small_files_with_few_keys(tmp_path, monkeypatch):
    """One file per row, transfer descriptor and claim: what `dvc metrics show` lists."""
    monkeypatch.chdir(tmp_path)
    metrics = _metrics(True)
    claims_ = claims.check_claims(metrics, _correct(metrics))
    report.write_summary(metrics, claims_)
    files = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "metrics/summary").iterdir()}
    entry = metrics["D-jitter"]["single-scale"]
    assert files["D-jitter"] == {"top1": round(entry["top1_error"], 1),
                                 "top5": round(entry["top5_error"], 1)}  # fmt: skip
    assert files["claim-depth"] == {"verdict": 1} and len(files) == len(metrics) + len(claims_)
    assert all(len(v) <= 2 for v in files.values())


def test_figures_are_drawn_and_the_same_for_the_same_numbers(tmp_path):
    from vgg_repro.pipeline import figures

    errors = {"A": 7.0, "A-LRN": 11.9, "B": 5.9, "C": 25.1, "D": 8.1, "E": 29.6}
    a = figures.draw_depth(errors, tmp_path / "a.svg").read_bytes()
    b = figures.draw_depth(errors, tmp_path / "b.svg").read_bytes()
    assert a == b and a.count(b"<path") > 10 and b"Date" not in a
    curves = {"A-s256": [80.0, 50.0, 20.0], "D-jitter": [30.0, 20.0]}
    assert b"<path" in figures.draw_curves(curves, tmp_path / "c.svg").read_bytes()
    table5 = {n: {"dense": 4.0, "multi-crop": 2.0, "dense+multi-crop": 2.5} for n in "DE"}
    assert b"<path" in figures.draw_protocols(table5, tmp_path / "p.svg").read_bytes()


def test_report_names_missing_or_mismatched_posteriors(tmp_path):
    metrics = _metrics(True)
    _write_posteriors(tmp_path, metrics)
    folder = tmp_path / "posteriors"
    assert len(report.load_correct(metrics, folder)) == sum(len(e) for e in metrics.values())
    (folder / "B-s256" / "files.txt").write_text("other/images.png\n")
    with pytest.raises(VGGReproError, match="B-s256 holds posteriors of other images"):
        report.load_correct(metrics, folder)
    shutil.rmtree(folder / "B-s256")
    with pytest.raises(VGGReproError, match="cannot read the posteriors of B-s256"):
        report.load_correct(metrics, folder)


def test_seeds_summary_calls_significant_only_what_every_seed_gives(tmp_path, capsys):
    from vgg_repro.pipeline import seeds

    def results(depth: str, lrn: str, error_a: float) -> dict:
        row = {"nets": ["A"], "row": "s256", "setting": "single-scale", "top1_error": error_a}
        claims_ = [{"id": "depth", "verdict": depth}, {"id": "lrn", "verdict": lrn}]
        return {"profile": "miniature", "claims": claims_, "rows": [row]}

    files = []
    for n, (depth, lrn, err) in enumerate(
        [("agrees", "agrees", 12.0), ("agrees", "inconclusive", 14.0), ("agrees", "agrees", 16.0)],
        start=1,
    ):
        files.append(tmp_path / f"seed-{n}.json")
        files[-1].write_text(json.dumps(results(depth, lrn, err)))
    out = tmp_path / "summary.md"
    assert seeds.main([*map(str, files), "--out", str(out)]) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"depth": "agrees", "lrn": "inconclusive"}
    (a,) = summary["errors"]
    assert (a["mean"], a["min"], a["max"], a["std"]) == (14.0, 12.0, 16.0, 2.0)
    md = out.read_text()
    assert "| lrn | agrees | inconclusive | agrees | inconclusive |" in md
    assert "| A s256 single-scale | 12.0 | 14.0 | 16.0 | 14.0 | 4.0 |" in md
    # A run older than a claim has no verdict on it: "not run", never "inconclusive".
    older = results("agrees", "agrees", 1.0)
    older["claims"] = older["claims"][:1]
    newer = dict(results("agrees", "agrees", 1.0))
    both = seeds.summarise({"seed-1": older, "seed-2": newer})
    lrn = next(c for c in both["claims"] if c["id"] == "lrn")
    assert lrn == {"id": "lrn", "verdicts": ["not run", "agrees"], "verdict": "inconclusive"}
    with pytest.raises(ConfigError, match="at least two seeds"):
        seeds.summarise({"seed-1": results("agrees", "agrees", 1.0)})
    smoke = dict(results("agrees", "agrees", 1.0), profile="smoke")
    with pytest.raises(ConfigError, match="different profiles"):
        seeds.summarise({"a": results("agrees", "agrees", 1.0), "b": smoke})
    files[0].write_text("{not json")
    with pytest.raises(ConfigError, match=f"cannot read the results file {files[0]}"):
        seeds.main([*map(str, files), "--out", str(out)])


def test_a_net_at_chance_is_no_evidence():
    """A failed run (top-1 accuracy not above 1/classes) decides no claim."""
    metrics = _metrics(better_deep=True)
    metrics["A-LRN-s256"]["single-scale"]["top1_error"] = 89.5  # 10 classes: chance is 90
    correct = _correct(metrics)
    found = {c["id"]: c for c in claims.check_claims(metrics, correct)}
    lrn = found["lrn"]
    assert lrn["verdict"] == "inconclusive" and not lrn["holds"]
    assert {"kind": "at_chance", "nets": ["A-LRN-s256 single-scale"]} in lrn["ours"]
    assert "at chance, so no evidence: A-LRN-s256 single-scale" in claims.format_evidence(
        lrn["ours"]
    )
    assert found["depth"]["verdict"] == "agrees"  # A-LRN is not part of it
    md = report.render_markdown(
        "miniature", {"classes": []}, metrics, list(found.values()), correct=correct
    )
    assert any(
        line.startswith("| A-LRN-s256 |") and "at chance: a failed run" in line
        for line in md.splitlines()
    )
    assert not any(
        line.startswith("| A-s256 |") and "at chance" in line for line in md.splitlines()
    )
