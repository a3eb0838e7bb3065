"""Issue 8: a run survives being killed, and no data file is silently dropped."""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from test_data import write_image_folder
from test_training import SMALL

from vgg_repro import checkpoints
from vgg_repro.data import images as data_images
from vgg_repro.data import transforms as T
from vgg_repro.errors import DataError

# The training tests' shrunk miniature run, longer, with its own seed. 12 epochs leave
# the kill below (at most 0.3 s after the first checkpoint) well before the end: with
# 6, a fast CI machine once finished them all before the kill.
EPOCHS = 12
FIT = [*SMALL, "--trainer.max_epochs", str(EPOCHS), "--seed_everything", "7"]


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
    time.sleep(random.uniform(0.0, 0.3))  # a random point after the first checkpoint
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    epochs_done = checkpoints.load_checkpoint(last)["epoch"] + 1
    assert epochs_done < EPOCHS
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
    folder = data_images.ImageFolder(root / "train", T.EvalTransform(40, 32))
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
            data_images.load_image(tmp_path / name)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "I;16"])
def test_greyscale_cmyk_rgba_and_16_bit_png_are_converted(tmp_path, mode):
    path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
    if mode == "I;16":
        Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (40, 30)).save(path)
    img = data_images.load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)
    if mode == "I;16":
        assert img.getpixel((0, 0)) == (255, 255, 255)


# --- `dvc repro` itself killed and run again (issue 8) ------------------------------------

ROOT = Path(__file__).resolve().parents[1]
TRAIN_A = ["dvc", "repro", "train_scratch@A"]


def _dvc_env(**extra: str) -> dict:
    return os.environ | {
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
        **extra,
    }


def _dvc(repo: Path, env: dict | None = None) -> subprocess.Popen:
    # A session of its own: a scheduler signals every process of the job, dvc and the
    # training it runs alike.
    return subprocess.Popen(
        TRAIN_A,
        cwd=repo,
        env=env or _dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _session_alive(sid: int) -> bool:
    """Whether a live (not zombie) process of session ``sid`` is left."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while it was read
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, then ppid pgrp session
            return True
    return False


def _kill_job(proc: subprocess.Popen, sig: int) -> None:
    """Signal the whole job, as a scheduler does, and wait for all of it to end: dvc
    exits at once, while the training under it may still finish its batch (Lightning's
    SIGTERM handling) and write one more checkpoint."""
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    deadline = time.monotonic() + 120
    while _session_alive(proc.pid):
        assert time.monotonic() < deadline, "the training outlived dvc by 2 minutes"
        time.sleep(0.05)


def _model_weights(repo: Path) -> dict:
    return checkpoints.load_checkpoint(repo / "models" / "A" / "s256" / "model.pt")["state_dict"]


@pytest.fixture(scope="module")
def pipeline_clone(tmp_path_factory):
    """A clone whose smoke profile trains net A long enough to be killed, and that
    net's weights from an uninterrupted ``dvc repro``."""
    if not (ROOT / ".git").exists() or shutil.which("dvc") is None:
        pytest.skip("needs the git repository and dvc")
    repo = tmp_path_factory.mktemp("pipeline") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    doc = yaml.safe_load((repo / "params.yaml").read_text())
    doc["profile"] = "smoke"
    smoke = doc["profiles"]["smoke"]["train"]
    smoke["epochs"]["scratch"] = 12
    smoke["limit_per_class"] = {"train": 20, "val": 3}
    smoke["overrides"] = {"model.lr_patience": 50}  # every epoch runs: no early stop
    (repo / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    straight = _dvc(repo)
    out = straight.communicate(timeout=600)[0].decode()
    assert straight.returncode == 0, out[-4000:]
    return repo, _model_weights(repo)


def _restart_from_scratch(repo: Path) -> Path:
    shutil.rmtree(repo / "models" / "A")
    return repo / "models" / "A" / "s256" / "run" / "checkpoints" / "last.ckpt"


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), "no checkpoint was written"


def _resume_and_compare(repo: Path, straight: dict, last: Path, env: dict | None = None) -> None:
    epochs_done = checkpoints.load_checkpoint(last)["epoch"] + 1
    assert epochs_done < 12, "the run was killed after its last epoch"
    again = _dvc(repo, env)
    out = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, out[-4000:]
    assert "resuming A s256 from" in out  # not from scratch
    logs = sorted((repo / "models" / "A" / "s256" / "run").glob("csv/version_*/metrics.csv"))
    epochs = [int(r["epoch"]) for r in csv.DictReader(logs[-1].open()) if r.get("epoch")]
    assert min(epochs) == epochs_done
    resumed = _model_weights(repo)
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_dvc_repro_resumes_to_the_same_weights(pipeline_clone, sig):
    repo, straight = pipeline_clone
    last = _restart_from_scratch(repo)
    proc = _dvc(repo)
    _wait_for(last, proc)
    time.sleep(random.uniform(0.0, 1.0))  # a random point after the first checkpoint
    assert proc.poll() is None, "the run ended before it could be killed"
    _kill_job(proc, sig)
    assert checkpoints.load_checkpoint(last)  # the checkpoint on disk is whole
    _resume_and_compare(repo, straight, last)


def test_slurm_requeue_on_sigusr1_resumes_to_the_same_weights(pipeline_clone, tmp_path):
    """SLURM sends SIGUSR1 before the time limit: Lightning saves an HPC checkpoint and
    requeues the job (``scontrol requeue``); the requeued ``dvc repro`` resumes from the
    last epoch's checkpoint, the same path as after a kill."""
    repo, straight = pipeline_clone
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    requeued = tmp_path / "scontrol.log"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> "{requeued}"\n')
    scontrol.chmod(0o755)
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "vgg-repro",
        "SLURM_NTASKS": "1",
        "SLURM_NODELIST": "localhost",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    env = _dvc_env(**slurm)
    last = _restart_from_scratch(repo)
    proc = _dvc(repo, env)
    _wait_for(last, proc)
    time.sleep(random.uniform(0.0, 1.0))
    assert proc.poll() is None, "the run ended before it could be signalled"
    # dvc runs the stage through ``sh -c``; dash does not exec its command, so the
    # pattern is anchored on the Python process itself, not the shell around it.
    trainer = subprocess.run(
        [
            "pgrep",
            "-s",
            str(proc.pid),
            "-f",
            r"^[^ ]*python[^ ]* -m vgg_repro[.]pipeline[.]train A ",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert trainer, "the training process was not found"
    os.kill(int(trainer[0]), signal.SIGUSR1)
    run = repo / "models" / "A" / "s256" / "run"
    deadline = time.monotonic() + 60
    while not (requeued.exists() and list(run.glob("hpc_ckpt_*.ckpt"))):
        assert time.monotonic() < deadline and proc.poll() is None, "no requeue"
        time.sleep(0.05)
    assert requeued.read_text().split() == ["requeue", "4242"]
    _kill_job(proc, signal.SIGKILL)  # the time limit
    _resume_and_compare(repo, straight, last, env)
