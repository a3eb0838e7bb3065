"""The training recipe and `vgg-repro fit` (vgg_repro.training), on the CPU with tiny data.

Every run uses the shipped miniature config, shrunk by command-line overrides, so
the configs users run are the ones tested.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from test_data import write_image_folder

from vgg_repro import checkpoints, cli, models, training
from vgg_repro.data import transforms as T
from vgg_repro.errors import CheckpointError, ConfigError
from vgg_repro.training.callbacks import PlateauSchedule

SMALL = [
    "--config", "miniature", "--data.batch_size", "8", "--data.num_workers", "0",
    "--data.skip_bad_files", "true", "--trainer.accelerator", "cpu",
    "--trainer.deterministic", "true", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1",
]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a busy 2-core machine two spinning threads run 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes x 10 train images (plus a greyscale, a CMYK and a corrupt one), 4 val each."""
    root = write_image_folder(tmp_path_factory.mktemp("data") / "tiny")
    (root / "train" / "fox" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not a JPEG")
    return root


def fit(root: Path, run: Path, *extra: str, command: str = "fit") -> None:
    args = [*SMALL, "--data.root", str(root), "--trainer.default_root_dir", str(run), *extra]
    assert cli.main([command, *args]) == 0


def logged(run: Path) -> list[dict]:
    """Rows of the CSV logs of a run (all versions, in order)."""
    rows = []
    for path in sorted(run.glob("csv/version_*/metrics.csv")):
        rows += list(csv.DictReader(path.open()))
    return rows


def epoch_values(run: Path, key: str) -> list[float]:
    return [float(r[key]) for r in logged(run) if r.get(key)]


@pytest.fixture(scope="module")
def trained_a(folder, tmp_path_factory) -> Path:
    """One training epoch of the narrow net A: the run folder."""
    run = tmp_path_factory.mktemp("runs") / "A"
    fit(folder, run, "--trainer.max_epochs", "1")
    return run


def test_one_epoch_on_a_tiny_folder(trained_a, folder):
    ckpt = checkpoints.load_checkpoint(trained_a / "checkpoints" / "last.ckpt")
    meta = ckpt[checkpoints.META_KEY]
    assert meta["classes"] == ["cat", "dog", "fox"] and meta["arch"] == "A"
    assert meta["crop_size"] == 32 and meta["num_classes"] == 3  # linked from the data
    net, _ = checkpoints.model_from_checkpoint(trained_a / "checkpoints" / "last.ckpt")
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    # 33 readable training images, global batch 8: 4 steps; the corrupt file is reported.
    assert ckpt["global_step"] == 4
    skipped = (trained_a / "skipped_files.txt").read_text().split()
    assert skipped == [str(folder / "train" / "fox" / "corrupt.jpg")]
    assert epoch_values(trained_a, "data/skipped_files") == [1.0]
    for key in ("val/top1_error", "val/top5_error", "val/loss", "train/loss"):
        assert len(epoch_values(trained_a, key)) == 1, key
    assert 0 <= epoch_values(trained_a, "val/top1_error")[0] <= 100
    assert epoch_values(trained_a, "train/lr")[0] == pytest.approx(0.01)
    assert epoch_values(trained_a, "train/throughput")[0] > 0
    assert (trained_a / "dvclive" / "metrics.json").is_file()
    # DVCLive wrote the epoch's validation error too: dvc.yaml plots these files.
    tsv = trained_a / "dvclive" / "plots" / "metrics" / "val" / "top1_error.tsv"
    logged = [float(r["top1_error"]) for r in csv.DictReader(tsv.open(), delimiter="\t")]
    assert logged == pytest.approx(epoch_values(trained_a, "val/top1_error"))


def test_validate_and_test_a_checkpoint(trained_a, folder, tmp_path):
    ckpt = str(trained_a / "checkpoints" / "last.ckpt")
    fit(folder, tmp_path / "v", "--ckpt_path", ckpt, command="validate")
    fit(folder, tmp_path / "t", "--ckpt_path", ckpt, command="test")  # no test split: val
    assert epoch_values(tmp_path / "v", "val/top1_error") == epoch_values(
        trained_a, "val/top1_error"
    )
    assert epoch_values(tmp_path / "t", "test/top1_error") == epoch_values(
        trained_a, "val/top1_error"
    )


def test_loss_goes_down_on_a_fixed_batch():
    # The recipe's SGD (lr 1e-2, momentum 0.9, weight decay 5e-4) on one batch of
    # mean-subtracted pixels, as the data module delivers them.
    torch.manual_seed(0)
    module = training.VGGClassifier("A", 4, width=0.0625, crop_size=32, init="xavier", dropout=0)
    optimizer = module.configure_optimizers()
    y = torch.arange(8) % 4
    colours = torch.tensor([[200.0, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])
    x = colours[y][:, :, None, None] + 30 * torch.randn(8, 3, 32, 32)
    x = T.subtract_mean(x, torch.tensor(T.IMAGENET_MEAN_RGB))
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.cross_entropy(module(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_global_batch_arithmetic(folder, tmp_path):
    assert training.per_device_batch(256, 4, 2) == 32
    dm = training.ImageFolderDataModule(str(folder), scale_min=40, scale_max=40, crop_size=32,
                                        batch_size=12, num_workers=0)  # fmt: skip
    dm.trainer = SimpleNamespace(world_size=2, accumulate_grad_batches=3, default_root_dir=tmp_path)
    dm.setup("fit")
    assert dm.batch_per_device == 2  # 12 / (2 devices x 3 accumulation steps)
    dm.trainer.world_size = 5
    with pytest.raises(ConfigError, match="batch_size=12 .* 5 devices x 3 accumulation"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.scale_min", "60", "--data.scale_max", "50"], "scale_min=60 > data.scale_max=50"),
        (["--data.scale_min", "30", "--data.scale_max", "50"], "crop_size=32 > data.scale_min=30"),
        (["--model.lr", "-0.1"], "model.lr=-0.1"),
        (["--model.arch", "F"], "unknown VGG configuration 'F'"),
        (["--data.batch_size", "1000"], "batch_size=1000 exceeds the 33 training images"),
    ],
)
def test_impossible_settings_are_refused_by_name(folder, tmp_path, capsys, override, message):
    args = [*SMALL, "--data.root", str(folder), "--trainer.default_root_dir", str(tmp_path)]
    assert cli.main(["fit", *args, *override]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_resume_gives_the_uninterrupted_weights(folder, tmp_path):
    fit(folder, tmp_path / "full", "--trainer.max_epochs", "2")
    fit(folder, tmp_path / "cut", "--trainer.max_epochs", "1")
    fit(folder, tmp_path / "cut", "--trainer.max_epochs", "2", "--ckpt_path", "last")
    full = torch.load(tmp_path / "full/checkpoints/last.ckpt", weights_only=True)
    cut = torch.load(tmp_path / "cut/checkpoints/last.ckpt", weights_only=True)
    assert full["global_step"] == cut["global_step"] == 8
    for key, value in full["state_dict"].items():
        assert torch.equal(value, cut["state_dict"][key]), key
    assert full["optimizer_states"][0]["state"][0]["momentum_buffer"].equal(
        cut["optimizer_states"][0]["state"][0]["momentum_buffer"]
    )


def test_two_process_ddp_agrees_with_one_process(folder, tmp_path):
    common = ["--trainer.max_epochs", "2", "--model.dropout", "0", "--data.root", str(folder)]
    fit(folder, tmp_path / "one", *common)
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    cmd = [sys.executable, "-m", "vgg_repro.cli", "fit", *SMALL, *common, *ddp,
           "--trainer.default_root_dir", str(tmp_path / "two")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    for key in ("train/loss", "val/loss", "val/top1_error", "val/top5_error"):
        one, two = epoch_values(tmp_path / "one", key), epoch_values(tmp_path / "two", key)
        assert len(one) == len(two) == 2 and one == pytest.approx(two, rel=1e-3, abs=1e-3), key


def test_every_shipped_config_parses(capsys):
    names = sorted(p.stem for p in training.cli.CONFIG_DIR.glob("*.yaml"))
    rows = {"A", "A-LRN", "B"} | {f"{n}_{s}" for n in "CDE" for s in ("S256", "S384", "jitter")}
    assert rows | {"miniature"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as stop:
            training.main(["fit", "--config", name, "--print_config"])
        assert stop.value.code in (0, None), name
        printed = capsys.readouterr().out
        assert "batch_size:" in printed and "arch:" in printed, name
    with pytest.raises(ConfigError, match="shipped: A, A-LRN"):
        training.resolve_config("no-such-config")


def test_parent_checkpoints(trained_a, tmp_path):
    parent = str(trained_a / "checkpoints" / "last.ckpt")
    net_a, _ = checkpoints.model_from_checkpoint(parent)
    kw = {"num_classes": 3, "width": 0.0625, "crop_size": 32}
    deeper = training.VGGClassifier("D", init_from_a=parent, **kw)
    deeper._load_parent()
    for src, dst in [("features.0", "features.0"), ("classifier.6", "classifier.6")]:
        assert torch.equal(net_a.get_submodule(src).weight, deeper.net.get_submodule(dst).weight)
    same = training.VGGClassifier("A", finetune_from=parent, lr=1e-3, **kw)
    same._load_parent()
    assert all(
        torch.equal(a, b)
        for a, b in zip(net_a.state_dict().values(), same.net.state_dict().values(), strict=True)
    )
    with pytest.raises(CheckpointError, match="holds configuration A, not B"):
        training.VGGClassifier("B", finetune_from=parent, **kw)._load_parent()
    with pytest.raises(ConfigError, match="not both"):
        training.VGGClassifier("B", finetune_from=parent, init_from_a=parent, **kw)
    assert models.count_parameters(deeper.net) > models.count_parameters(net_a)


def test_plateau_schedule_stops_after_three_decreases():
    module = training.VGGClassifier("A", num_classes=2, width=0.0625, crop_size=32, lr_patience=1)
    schedule = next(c for c in module.configure_callbacks() if isinstance(c, PlateauSchedule))
    trainer = SimpleNamespace(
        should_stop=False, sanity_checking=False, optimizers=[module.configure_optimizers()]
    )
    schedule.on_train_start(trainer, module)
    lrs = []
    for error in [50.0, 40.0] + [40.0] * 8:  # improves once, then a plateau
        trainer.callback_metrics = {"val/top1_error": torch.tensor(error)}
        schedule.on_validation_end(trainer, module)
        lrs.append(schedule.scheduler.get_last_lr()[0])
        if trainer.should_stop:
            break
    assert lrs[:4] == [0.01, 0.01, 0.01, pytest.approx(1e-3)]  # patience 1: second bad epoch
    assert schedule.decreases == 4 and len(lrs) == 10  # stopped at the would-be 4th decrease
    assert min(lrs[:-1]) == pytest.approx(1e-5)
    # Its state goes into the checkpoint and comes back in a resumed run.
    resumed = PlateauSchedule(patience=1)
    resumed.load_state_dict(schedule.state_dict())
    resumed.on_train_start(trainer, module)
    assert resumed.decreases == 4
    assert resumed.scheduler.state_dict() == schedule.scheduler.state_dict()


class NaNInputs(pl.Callback):
    """Turns the inputs of one training step into NaN, as a corrupt batch would."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            batch[0].fill_(float("nan"))


def test_nan_loss_stops_training_naming_the_step_and_keeps_last_good_checkpoint(
    folder, tmp_path, capsys
):
    run = tmp_path / "diverged"
    fit(folder, run, "--trainer.max_epochs", "1")
    good = run / "checkpoints" / "last.ckpt"
    before = checkpoints.load_checkpoint(good)
    step = before["global_step"] + 1  # in the second epoch
    args = [*SMALL, "--data.root", str(folder), "--trainer.default_root_dir", str(run)]
    args += ["--trainer.max_epochs", "2", "--ckpt_path", "last"]
    args += ["--trainer.callbacks+=test_training.NaNInputs", f"--trainer.callbacks.at_step={step}"]
    assert cli.main(["fit", *args]) == 2
    err = capsys.readouterr().err
    assert f"loss became NaN or infinite at step {step} (epoch 1)" in err
    assert f"the last good checkpoint is {good}" in err and "Traceback" not in err
    after = checkpoints.load_checkpoint(good)["state_dict"]
    assert all(torch.equal(before["state_dict"][k], after[k]) for k in after)


def test_dvclive_still_reads_every_frames_source(tmp_path, monkeypatch):
    """The reason for vgg_repro.training.dvclive_shim: dvclive's own log_metrics calls
    inspect.stack() (reading the source of every frame). When this fails, dvclive has
    stopped doing so: delete the shim and use dvclive.lightning.DVCLiveLogger."""
    import dvclive.lightning

    calls = []
    real = dvclive.lightning.inspect.stack
    monkeypatch.setattr(dvclive.lightning.inspect, "stack", lambda *a: calls.append(1) or real())
    logger = dvclive.lightning.DVCLiveLogger(dir=str(tmp_path / "upstream"), save_dvc_exp=False)
    logger.log_metrics({"x": 1.0}, step=0)
    assert calls, "dvclive no longer calls inspect.stack(): remove vgg_repro's shim"


def test_the_dvclive_shim_syncs_from_lightnings_hooks_only(tmp_path, monkeypatch):
    import dvclive.fabric
    import dvclive.lightning

    from vgg_repro.training.dvclive_shim import FastSyncDVCLiveLogger

    seen = []
    monkeypatch.setattr(
        dvclive.fabric.DVCLiveLogger, "log_metrics", lambda self, m, step, sync: seen.append(sync)
    )
    monkeypatch.setattr(dvclive.lightning.inspect, "stack", lambda *a: pytest.fail("read"))
    logger = FastSyncDVCLiveLogger(dir=str(tmp_path / "shim"), save_dvc_exp=False)

    def update_train_epoch_metrics():  # the name of Lightning's hook
        logger.log_metrics({"x": 1.0}, step=1)

    logger.log_metrics({"x": 1.0}, step=0)
    update_train_epoch_metrics()
    assert seen == [False, True]
