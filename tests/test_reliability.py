"""Issue 8: a run survives being killed, and no data file is silently dropped."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import write_image_folder
from test_training import SMALL

from vgg_repro import checkpoints
from vgg_repro import data as D
from vgg_repro import transforms as T
from vgg_repro.errors import DataError

# The training tests' shrunk miniature run, longer, with its own seed.
FIT = [*SMALL, "--trainer.max_epochs", "6", "--seed_everything", "7"]


def _fit(root: Path, run: Path, *extra: str) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "vgg_repro.cli", "fit", *FIT, "--data.root", str(root)]
    cmd += ["--trainer.default_root_dir", str(run), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _weights(run: Path) -> dict:
    return checkpoints.load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_fit_resumes_from_last_checkpoint_to_the_same_weights(tmp_path, sig):
    root = write_image_folder(tmp_path / "data", train=12, val=3)
    straight = _fit(root, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read().decode()[-2000:]

    run = tmp_path / "killed"
    proc = _fit(root, run)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))  # a random point after the first checkpoint
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    epochs_done = checkpoints.load_checkpoint(last)["epoch"] + 1
    assert epochs_done < 6
    assert checkpoints.load_checkpoint(last)  # the checkpoint on disk is whole

    resumed = _fit(root, run, "--ckpt_path", "last")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    # The resumed run starts where the checkpoint left off, not from scratch.
    resumed_log = sorted(run.glob("csv/version_*/metrics.csv"))[-1]
    epochs = [int(r["epoch"]) for r in csv.DictReader(resumed_log.open()) if r.get("epoch")]
    assert min(epochs) == epochs_done
    a, b = _weights(tmp_path / "straight"), _weights(run)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_file_is_used_or_reported(tmp_path):
    root = write_image_folder(tmp_path / "d", classes=("cat", "dog"), train=3, val=1)
    cat = root / "train" / "cat"
    (cat / "notes.txt").write_text("not an image")
    Image.new("RGB", (40, 40)).save(cat / "photo.jpeg.bak", format="JPEG")  # wrongly named
    (cat / ".DS_Store").write_bytes(b"\0")  # hidden files are the system's, not data
    folder = D.ImageFolder(root / "train", T.EvalTransform(40, 32))
    assert sorted(Path(p).name for p in folder.ignored) == ["notes.txt", "photo.jpeg.bak"]
    assert len(folder) == 2 * 3 + 2  # the images, the greyscale and the CMYK


def test_zero_byte_truncated_and_non_image_files_name_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    Image.new("RGB", (64, 48), (10, 20, 30)).save(good)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:100])
    (tmp_path / "text.png").write_text("hello")
    for name in ("empty.jpg", "cut.jpg", "text.png"):
        with pytest.raises(DataError, match=rf"cannot read image .*{name}.*skip_bad_files"):
            D.load_image(tmp_path / name)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "I;16"])
def test_greyscale_cmyk_rgba_and_16_bit_png_are_converted(tmp_path, mode):
    path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
    if mode == "I;16":
        Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (40, 30)).save(path)
    img = D.load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)
    if mode == "I;16":
        assert img.getpixel((0, 0)) == (255, 255, 255)
