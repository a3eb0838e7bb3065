"""Bad checkpoints and settings as a hostile user gives them: one line each, nothing run.

Unreadable is not unsafe: an empty, truncated, random or foreign file is "not a
checkpoint (...)"; only a file that really holds a disallowed pickled object gets the
refusal, and never with a hint to turn the safety off.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vgg_repro import checkpoints, cli, models
from vgg_repro.errors import CheckpointError

SAFETY_OFF_HINTS = ("weights_only=False", "weights_only` set to `False`", "add_safe_globals")


class _RunsCode:
    """A pickle that would create ``marker`` when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    """The bytes of a real model file (narrow net A, 2 classes)."""
    path = tmp_path_factory.mktemp("good") / "model.pt"
    net = models.build("A", num_classes=2, width=0.0625, crop_size=32, init="xavier")
    checkpoints.save_model(path, net, 0.0625, ["a", "b"])
    return path.read_bytes()


def _refusal(path: Path) -> str:
    with pytest.raises(CheckpointError) as err:
        checkpoints.model_from_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message, message
    assert not any(hint in message for hint in SAFETY_OFF_HINTS), message
    return message


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.ckpt", b"", "the file is empty"),
        ("random.ckpt", bytes(random.Random(1).randrange(256) for _ in range(4000)), "torch.save"),
        ("text.ckpt", b"just a text file\n", "torch.save"),
    ],
)
def test_unreadable_files_are_not_checkpoints_not_unsafe(tmp_path, name, content, why):
    path = tmp_path / name
    path.write_bytes(content)
    message = _refusal(path)
    assert "not a checkpoint (" in message and why in message and str(path) in message
    assert "refused" not in message and "could run code" not in message


def test_truncated_and_foreign_formats_are_not_checkpoints(tmp_path, good):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good[: len(good) // 2])
    assert "not a checkpoint (a damaged or truncated zip archive)" in _refusal(cut)
    npy = tmp_path / "weights.npy"
    np.save(npy, np.ones(3))
    assert "not a checkpoint (" in _refusal(npy)


def test_only_a_disallowed_global_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": _RunsCode(marker)}, evil)
    message = _refusal(evil)
    assert message.startswith(f"refused to load {evil}") and "posix.system" in message
    assert not marker.exists()


def _with_pickle(good: bytes, mutate) -> bytes:
    """A copy of the checkpoint zip whose data.pkl went through ``mutate``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, mutate(data) if item.filename.endswith("data.pkl") else data)
    return out.getvalue()


def test_fuzzed_checkpoints_are_all_refused_in_one_line_and_run_nothing(tmp_path, good):
    """200 random, truncated or mutated files: each refused with one line; none runs code."""
    rng = random.Random(2015)
    marker = tmp_path / "ran"
    payload = pickle.dumps(_RunsCode(marker), protocol=2)
    files = []
    for _ in range(60):  # random bytes, some starting like a zip or a pickle
        head = rng.choice([b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04"])
        files.append(head + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
    for _ in range(60):  # truncations of the real file
        files.append(good[: rng.randrange(0, len(good) - 1)])
    for _ in range(60):  # the pickle inside cut short at a random place
        files.append(_with_pickle(good, lambda d: d[: rng.randrange(0, len(d) - 1)]))
    for _ in range(20):  # the pickle inside replaced by one that runs code
        files.append(_with_pickle(good, lambda d: payload))
    assert len(files) == 200
    kinds = {"not a checkpoint": 0, "refused": 0, "other": 0}
    for i, content in enumerate(files):
        path = tmp_path / f"fuzz{i}.ckpt"
        path.write_bytes(content)
        message = _refusal(path)
        if "not a checkpoint" in message:
            kinds["not a checkpoint"] += 1
        elif message.startswith("refused to load"):
            kinds["refused"] += 1
        else:  # a file that loads but is no vgg-repro checkpoint: named as such
            kinds["other"] += 1
    assert not marker.exists()
    assert kinds["refused"] >= 20 and kinds["not a checkpoint"] >= 100, kinds


def test_fit_with_a_missing_or_broken_ckpt_path_is_one_line(tmp_path, capsys):
    broken = tmp_path / "random.ckpt"
    broken.write_bytes(os.urandom(2000))
    for path, expected in (
        (tmp_path / "missing.ckpt", "does not exist"),
        (broken, "is not a checkpoint (not a file written by torch.save)"),
    ):
        argv = ["fit", "--config", "miniature", "--ckpt_path", str(path)]
        argv += ["--data.root", str(tmp_path), "--trainer.default_root_dir", str(tmp_path / "r")]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err
        assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_out_of_range_settings_state_the_range(tmp_path):
    from vgg_repro.errors import ConfigError
    from vgg_repro.training import VGGClassifier

    with pytest.raises(ConfigError, match=r"model.lr=-0.1 is out of range: it must be .*> 0"):
        VGGClassifier("A", num_classes=2, lr=-0.1)
    with pytest.raises(ConfigError, match=r"model.momentum=1.5 .* in \[0, 1\)"):
        VGGClassifier("A", num_classes=2, momentum=1.5)


def _fit_args(root: Path, run: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", "miniature", "--data.root", str(root),
        "--trainer.default_root_dir", str(run), "--trainer.max_epochs", "1",
        "--data.batch_size", "4", "--data.num_workers", "0", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        *extra,
    ]  # fmt: skip


def test_an_empty_class_folder_is_an_error_or_with_skip_a_warning(tmp_path, capsys):
    from test_data import write_image_folder

    root = write_image_folder(tmp_path / "data")
    (root / "train" / "zebra").mkdir()
    (root / "val" / "zebra").mkdir()
    image = next((root / "val" / "cat").iterdir())
    (root / "val" / "zebra" / image.name).write_bytes(image.read_bytes())
    assert cli.main(_fit_args(root, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert (
        f"class folder {root / 'train' / 'zebra'} has no images" in err and "Traceback" not in err
    )
    with pytest.warns(UserWarning, match="class folders of .* have no images"):
        assert cli.main(_fit_args(root, tmp_path / "run2", "--data.skip_bad_files", "true")) == 0


def test_a_mistyped_option_is_one_line_with_the_closest_name(tmp_path, capsys):
    assert cli.main(_fit_args(tmp_path, tmp_path / "r", "--model.lr_patienc", "50")) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("did you mean --model.lr_patience?") and len(err.splitlines()) == 1
    assert cli.main(_fit_args(tmp_path, tmp_path / "r", "--model.lr", "abc")) == 2
    err = capsys.readouterr().err.strip()
    assert 'Parser key "model.lr"' in err and len(err.splitlines()) == 1
