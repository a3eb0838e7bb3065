"""The rest of issue 17's fault table: workers, full or read-only disks, second runs,
collapsed training, params.yaml typos, and random argument lists.

Each test reproduces the fault on the CPU and asserts the one-line message (or that
nothing the user had was lost).
"""

from __future__ import annotations

import errno
import math
import os
import random
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from test_data import write_image_folder

from vgg_repro import checkpoints, cli, files, models
from vgg_repro.errors import ConfigError
from vgg_repro.pipeline import common

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["cat", "dog", "fox"]


def _fit(root: Path, run: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", "miniature", "--data.root", str(root),
        "--trainer.default_root_dir", str(run), "--trainer.max_epochs", "1",
        "--data.batch_size", "8", "--data.num_workers", "0", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip


def _one_error_line(err: str, *expected: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err[-3000:]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def _leftovers(folder: Path) -> list[Path]:
    """Temporary files of an atomic write that a failure left behind."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("faults") / "data", train=6, val=3)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    net = models.build("A", num_classes=3, width=0.0625, crop_size=32, init="xavier")
    path = tmp_path_factory.mktemp("model") / "model.pt"
    checkpoints.save_model(path, net, 0.0625, CLASSES, scale_min=37, scale_max=37)
    return path


# --- workers, disks, second runs --------------------------------------------------------


def test_a_bad_image_read_in_a_worker_process_is_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "data", train=6, val=3)
    bad = root / "train" / "cat" / "cat_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    argv = _fit(root, tmp_path / "run")
    argv[argv.index("--data.num_workers") + 1] = "2"
    assert cli.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, f"cannot read image {bad}")
    assert "Original Traceback" not in line and "Caught DataError" not in line


class _FullDisk:
    """A file whose writes fail as on a full disk, after writing a few bytes."""

    def __init__(self, f) -> None:
        self.f = f

    def write(self, data):
        self.f.write(data[:8])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_full_disk_during_fit_leaves_whole_checkpoints_only(data, tmp_path, monkeypatch, capsys):
    real_save = torch.save
    calls = []

    def save(obj, f, *args, **kwargs):  # the second checkpoint file finds the disk full
        calls.append(1)
        if len(calls) >= 2:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    assert cli.main(_fit(data, run, "--trainer.max_epochs", "2")) == 2
    monkeypatch.undo()
    _one_error_line(capsys.readouterr().err, "No space left on device (the disk is full")
    assert _leftovers(run) == []
    ckpts = sorted((run / "checkpoints").glob("*.ckpt"))
    assert ckpts, "the checkpoint written before the disk filled up is gone"
    for ckpt in ckpts:  # every file there is whole
        assert checkpoints.load_checkpoint(ckpt)["epoch"] == 0


@pytest.mark.parametrize(
    ("code", "reason", "advice"),
    [
        (errno.ENOSPC, "No space left on device", "the disk is full"),
        (errno.EROFS, "Read-only file system", "the file system is read-only"),
        (errno.EACCES, "Permission denied", "permission denied"),
        (errno.EPERM, "Operation not permitted", "not permitted"),
        (errno.EDQUOT, "Disk quota exceeded", "the disk quota is used up"),
    ],
)
def test_evaluate_output_on_a_full_read_only_or_forbidden_disk_is_one_line(
    data, model_file, tmp_path, monkeypatch, capsys, code, reason, advice
):
    out = tmp_path / "metrics.json"
    out.write_text('{"earlier": "results"}\n')
    if code == errno.ENOSPC:  # the disk fills up while the file is written
        real = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FullDisk(real(fd, *a, **k)))
    else:  # the folder refuses the temporary file

        def refuse(*args, **kwargs):
            raise OSError(code, reason, str(tmp_path))

        monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    argv = ["evaluate", "--ckpt", str(model_file), "--data", str(data / "val"), "--quiet"]
    argv += ["--scales", "37", "--workers", "0", "--output", str(out)]
    assert cli.main(argv) == 2
    monkeypatch.undo()
    _one_error_line(capsys.readouterr().err, f"{out}: {reason} ({advice}")
    assert out.read_text() == '{"earlier": "results"}\n'  # the earlier file is intact
    assert _leftovers(tmp_path) == []


def test_a_second_fit_into_the_same_folder_keeps_the_first_runs_logs(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(_fit(data, run)) == 0
    logs = {p: p.read_bytes() for p in (run / "dvclive").rglob("*") if p.is_file()}
    last = (run / "checkpoints" / "last.ckpt").read_bytes()
    capsys.readouterr()
    assert cli.main(_fit(data, run)) == 2
    _one_error_line(capsys.readouterr().err, "already holds a run", "--ckpt_path last")
    assert {p: p.read_bytes() for p in logs} == logs
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == last
    # Resuming it is what the message offers, and it works.
    assert cli.main(_fit(data, run, "--trainer.max_epochs", "2", "--ckpt_path", "last")) == 0


def test_several_nodes_without_a_launcher_is_one_line_not_a_hang(data, tmp_path, capsys):
    for var in ("MASTER_ADDR", "WORLD_SIZE", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID"):
        assert var not in os.environ
    assert cli.main(_fit(data, tmp_path / "run", "--trainer.num_nodes", "2")) == 2
    _one_error_line(capsys.readouterr().err, "trainer.num_nodes=2", "torchrun or srun")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there")
@pytest.mark.parametrize("command", ["evaluate", "features"])
def test_asking_for_a_gpu_on_a_machine_without_one_is_one_line(
    data, model_file, tmp_path, capsys, command
):
    argv = [command, "--ckpt", str(model_file), "--data", str(data / "val"), "--device", "cuda"]
    if command == "features":
        argv += ["--out", str(tmp_path / "f.npy")]
    assert cli.main(argv) == 2
    _one_error_line(capsys.readouterr().err, "--device cuda: no CUDA GPU is available here")
    assert not (tmp_path / "f.npy").exists()


def test_lightnings_own_checks_are_one_line(data, tmp_path, capsys):
    assert cli.main(_fit(data, tmp_path / "run", "--trainer.devices", "x,y")) == 2
    _one_error_line(capsys.readouterr().err, "Lightning refused the trainer.* settings")


# --- collapse ---------------------------------------------------------------------------


def test_a_collapsed_run_stops_naming_the_epoch_and_keeps_the_last_good_checkpoint(
    data, tmp_path, monkeypatch, capsys
):
    """Epoch 0 learns (loss 0.5), epoch 1 is back at ln 3: the guard stops the run."""
    from vgg_repro.training import VGGClassifier

    losses = iter([0.5, math.log(3)])
    monkeypatch.setattr(VGGClassifier, "epoch_train_loss", lambda self: next(losses))
    run = tmp_path / "run"
    assert cli.main(_fit(data, run, "--trainer.max_epochs", "3")) == 2
    line = _one_error_line(capsys.readouterr().err, "training collapsed at epoch 1")
    assert "back at ln(3) = 1.10 (chance), after 0.50" in line
    assert str(run / "checkpoints" / "last.ckpt") in line
    assert checkpoints.load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 0


# --- params.yaml ------------------------------------------------------------------------


def _params(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(doc)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["profiles"]["miniature"]["train"]["hardware"].update(acelerator="cpu"),
            "unknown key profiles.miniature.train.hardware.acelerator; did you mean accelerator?",
        ),
        (
            lambda d: d["profiles"]["smoke"]["evaluate"].update(limit_per_clas=3),
            "unknown key profiles.smoke.evaluate.limit_per_clas; did you mean limit_per_class?",
        ),
        (
            lambda d: d["profiles"]["paper"]["transfer"].update(agregation="average"),
            "did you mean aggregation?",
        ),
        (lambda d: d["profiles"]["miniature"].update(train=5), "train must be a mapping"),
        (lambda d: d.update(profile="minature"), "'minature' is not one of the profiles"),
    ],
)
def test_every_key_of_every_profile_is_checked(tmp_path, edit, expected):
    with pytest.raises(ConfigError, match=None) as err:
        common.load_profile(_params(tmp_path, edit))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_params_that_are_not_yaml_name_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: miniature\nprofiles:\n  miniature: {config: [\n")
    with pytest.raises(ConfigError, match=r"params.yaml is not valid YAML \(line \d+\): fix"):
        common.load_profile(path)


def test_the_shipped_params_pass_the_check():
    name, profile = common.load_profile(ROOT / "params.yaml")
    assert name in ("miniature", "smoke", "paper") and profile["data"]


def _git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    return repo


def test_an_unknown_profile_gets_the_projects_message_and_dvc_exp_run_leaves_params_alone(
    tmp_path,
):
    """Set by hand (`dvc repro`) or by `dvc exp run -S`, an unknown profile gets the
    message that lists the valid ones, from the first stage, before anything runs; after
    `dvc exp run -S`, params.yaml is as it was (DVC had rewritten it)."""
    repo = _git_repo(tmp_path)
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    before = (repo / "params.yaml").read_text()
    run = subprocess.run(
        ["dvc", "exp", "run", "-S", "profile=nosuch"], cwd=repo, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert (
        "profile 'nosuch' is not one of the profiles defined there (miniature, smoke, paper)" in out
    )
    assert "Traceback" not in out and "are missing from" not in out
    assert (repo / "params.yaml").read_text() == before
    assert not (repo / "models" / "A" / "s256" / "model.pt").exists()  # nothing trained
    (repo / "params.yaml").write_text(before.replace("profile: miniature", "profile: minature"))
    run = subprocess.run(
        ["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "'minature' is not one of the profiles" in out
    assert "profile: minature" in (repo / "params.yaml").read_text()  # the user's edit stays


# --- the environment -------------------------------------------------------------------


def test_a_run_records_the_cpu_and_its_kernel_families():
    cpu = common.run_environment()["cpu"]
    assert cpu["capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256", "SVE")
    assert cpu["threads"] == torch.get_num_threads() and cpu["model"]
    if torch.backends.mkldnn.is_available():
        assert cpu["onednn"].startswith("v")


# --- random argument lists --------------------------------------------------------------

VALUES = [
    "0", "-1", "3", "1e9", "-0.5", "abc", "", "null", "true", "[1,2]", "{a: 1}", "nan",
    "inf", "cpu", "cuda", "2", "0.1", "x,y", "256,384", "MISSING", "DATA",
]  # fmt: skip


def _value(rng: random.Random, tmp_path: Path, data: Path) -> str:
    value = rng.choice(VALUES)
    return {"MISSING": str(tmp_path / "missing"), "DATA": str(data)}.get(value, value)


def _no_traceback(capsys, argv: list[str]) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse's own exit after its usage line, or --help
        code = stop.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err[-2000:])
    assert "Traceback" not in err, (argv, err[-3000:])
    assert len([line for line in err.splitlines() if "error:" in line]) <= 1, (argv, err)


FIT_OPTIONS = [
    "--model.lr", "--model.arch", "--model.width", "--model.dropout", "--model.momentum",
    "--model.weight_decay", "--data.batch_size", "--data.crop_size", "--data.scale_min",
    "--data.scale_max", "--data.num_workers", "--trainer.max_epochs", "--trainer.devices",
    "--trainer.accelerator", "--trainer.precision", "--trainer.strategy",
    "--model.init_from_a", "--model.finetune_from", "--data.root", "--ckpt_path", "--config",
    "--trainer.limit_train_batches", "--seed_everything", "--model.lr_patience",
    "--data.val_scale", "--model.init", "--bogus", "--data.reference_crop_size",
    "--model.max_lr_decreases", "--trainer.accumulate_grad_batches", "--trainer.callbacks",
    "--trainer.logger",
]  # fmt: skip


def test_random_fit_argument_lists_never_end_in_a_traceback(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a value taken for a path writes nothing elsewhere
    rng = random.Random(17)
    for i in range(30):
        argv = _fit(data, tmp_path / f"run{i}", "--trainer.fast_dev_run", "1")
        for _ in range(rng.randint(1, 3)):
            argv += [rng.choice(FIT_OPTIONS), _value(rng, tmp_path, data)]
        _no_traceback(capsys, argv)


EVALUATE_OPTIONS = [
    "--ckpt", "--arch", "--torchvision", "--weights", "--classes", "--data", "--protocol",
    "--scales", "--output", "--batch-size", "--workers", "--device", "--precision",
    "--split", "--bogus",
]  # fmt: skip


def test_random_evaluate_argument_lists_never_end_in_a_traceback(
    data, model_file, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(17)
    for _ in range(100):
        argv = ["evaluate", "--ckpt", str(model_file), "--data", str(data / "val"), "--quiet"]
        argv += ["--workers", "0"]
        for _ in range(rng.randint(1, 3)):
            argv += [rng.choice(EVALUATE_OPTIONS), _value(rng, tmp_path, data)]
        _no_traceback(capsys, argv)


# --- data/pinned ------------------------------------------------------------------------


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        ["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("change", ["edited", "added", "deleted"])
def test_a_change_in_data_pinned_is_refused_named_and_kept(tmp_path, change):
    """data/pinned is the pipeline's copy of data/miniature: copy_data finds a change
    made there in its record, refuses before it writes anything, names the file and
    says how to change the data on purpose; the user's change stays."""
    repo = _git_repo(tmp_path)
    assert _dvc(repo, "repro", "copy_data@miniature").returncode == 0
    images = sorted((repo / "data" / "pinned" / "train").rglob("*.jpg"))
    image = images[0] if change != "added" else images[0].with_name("mine.jpg")
    if change == "deleted":
        image.unlink()
    else:
        image.write_bytes(images[1].read_bytes()[:-10] + b"user edit!")
    run = _dvc(repo, "repro", "check_data")
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in out
    assert f"{image.relative_to(repo).as_posix()} was {change} after `dvc repro` copied it" in out
    assert "data/pinned is the pipeline's copy of data/miniature" in out
    assert "python -m vgg_repro.pipeline pin-data" in out
    if change == "deleted":
        assert not image.exists()
    else:
        assert image.read_bytes().endswith(b"user edit!")
    assert not (repo / "models" / "data.json").exists()  # check_data did not run


def test_a_file_deleted_from_the_source_is_deleted_from_the_copy_and_the_pin_refuses(tmp_path):
    repo = _git_repo(tmp_path)
    assert _dvc(repo, "repro", "copy_data@miniature").returncode == 0
    gone = sorted((repo / "data" / "miniature" / "val").rglob("*.jpg"))[0]
    gone.unlink()
    run = _dvc(repo, "repro", "check_data")
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in out
    assert not (repo / "data" / "pinned" / gone.relative_to(repo / "data" / "miniature")).exists()
    assert "differs from the one pinned in data/pins.yaml" in out and "pin-data" in out


def _files(root: Path, contents: dict[str, bytes]) -> None:
    for rel, data in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def _read(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_an_update_of_the_copy_killed_halfway_resumes(tmp_path, monkeypatch):
    """copy_data writes its record with the old and the new state before it copies,
    so the files it has already replaced are not taken for a user's edits."""
    from vgg_repro.pipeline import copy_data

    source, copy = tmp_path / "src", tmp_path / "copy"
    _files(source, {"train/a/1.jpg": b"a1", "train/a/2.jpg": b"a2", "val/b/3.jpg": b"b3"})
    copy_data.copy_data(source, copy)
    _files(source, {"train/a/1.jpg": b"A1", "train/a/2.jpg": b"A2", "val/b/4.jpg": b"b4"})
    (source / "val" / "b" / "3.jpg").unlink()
    real, calls = copy_data.atomic_write, []

    def dies_on_the_third_file(path, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, **kwargs)

    monkeypatch.setattr(copy_data, "atomic_write", dies_on_the_third_file)
    with pytest.raises(KeyboardInterrupt):
        copy_data.copy_data(source, copy)
    monkeypatch.setattr(copy_data, "atomic_write", real)
    assert len(calls) == 3 and calls[-1].name == "4.jpg"  # 1 and 2 replaced, then killed
    assert copy_data.copy_data(source, copy) == {"copied": 1, "removed": 1, "kept": 2}
    assert _read(copy) == _read(source)


def test_a_copy_without_a_record_is_taken_over_only_where_it_equals_its_source(tmp_path):
    """The copy an older version's DVC import made has no record: equal to its source it
    is adopted as is; with a file of its own it is refused."""
    from vgg_repro.errors import DataError
    from vgg_repro.pipeline import copy_data

    source, copy = tmp_path / "src", tmp_path / "copy"
    _files(source, {"train/a/1.jpg": b"a1", "train/a/2.jpg": b"a2"})
    _files(copy, {"train/a/1.jpg": b"a1", "train/a/2.jpg": b"a2"})
    assert copy_data.copy_data(source, copy) == {"copied": 0, "removed": 0, "kept": 2}
    copy_data.record_path(copy).unlink()
    _files(copy, {"train/a/extra.jpg": b"x"})
    with pytest.raises(DataError, match=r"extra.jpg was added and differs from .*src"):
        copy_data.copy_data(source, copy)
