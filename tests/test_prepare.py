"""`vgg-repro data prepare`: shrink once, keep the layout, resume, report what is not copied."""

from pathlib import Path

import pytest
from PIL import Image

from vgg_repro import cli
from vgg_repro.data.prepare import prepare
from vgg_repro.errors import ConfigError, DataError


def _folder(root: Path) -> Path:
    (root / "train" / "cat").mkdir(parents=True)
    (root / "val" / "cat").mkdir(parents=True)
    Image.new("RGB", (300, 200), (200, 10, 10)).save(root / "train" / "cat" / "big.jpg")
    Image.new("RGB", (90, 60), (10, 200, 10)).save(root / "train" / "cat" / "small.jpg")
    Image.new("L", (80, 400), 99).save(root / "val" / "cat" / "tall.png")
    (root / "train" / "cat" / "readme.txt").write_text("not an image")
    return root


def test_prepare_shrinks_large_images_and_copies_small_ones(tmp_path):
    src = _folder(tmp_path / "src")
    result = prepare(src, tmp_path / "dst", max_side=64, workers=1, progress=False)
    assert (result["resized"], result["copied"]) == (2, 1)
    assert result["not_images"] == [str(src / "train" / "cat" / "readme.txt")]
    with Image.open(tmp_path / "dst" / "train" / "cat" / "big.jpg") as img:
        assert img.size == (96, 64)  # isotropic: shorter side 64, aspect kept
    with Image.open(tmp_path / "dst" / "val" / "cat" / "tall.png") as img:
        assert img.size == (64, 320)
        assert img.format == "PNG"  # re-encoded in its own format: a .png holds a PNG
    with Image.open(tmp_path / "dst" / "train" / "cat" / "big.jpg") as img:
        assert img.format == "JPEG"
    assert (tmp_path / "dst/train/cat/small.jpg").read_bytes() == (
        src / "train/cat/small.jpg"
    ).read_bytes()
    assert not (tmp_path / "dst" / "train" / "cat" / "readme.txt").exists()


def test_prepare_resumes_without_redoing_finished_files(tmp_path):
    src = _folder(tmp_path / "src")
    dst = tmp_path / "dst"
    prepare(src, dst, max_side=64, workers=1, progress=False)
    (dst / "train" / "cat" / "big.jpg").unlink()  # as if killed before this file
    (dst / "train" / "cat" / ".big.jpg.part").write_bytes(b"half")  # a partial write
    again = prepare(src, dst, max_side=64, workers=1, progress=False)
    assert (again["resized"], again["done"]) == (1, 2)
    with Image.open(dst / "train" / "cat" / "big.jpg") as img:
        assert img.size == (96, 64)


def test_prepare_names_an_unreadable_file_or_skips_it(tmp_path, capsys):
    src = _folder(tmp_path / "src")
    (src / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    with pytest.raises(DataError, match="broken.jpg"):
        prepare(src, tmp_path / "a", max_side=64, workers=1, progress=False)
    code = cli.main(["data", "prepare", str(src), str(tmp_path / "b"), "--max-side", "64"])
    assert code == 2 and "broken.jpg" in capsys.readouterr().err
    args = [str(src), str(tmp_path / "c"), "--max-side", "64", "--skip-bad-files"]
    assert cli.main(["data", "prepare", *args]) == 0
    assert "skipped (unreadable):" in capsys.readouterr().out


def test_prepare_refuses_impossible_settings(tmp_path):
    src = _folder(tmp_path / "src")
    with pytest.raises(ConfigError, match="--max-side must be at least 32; got 16"):
        prepare(src, tmp_path / "dst", max_side=16, progress=False)
    with pytest.raises(ConfigError, match="output folder must differ from the input"):
        prepare(src, src, progress=False)
    with pytest.raises(DataError, match="is not a folder"):
        prepare(tmp_path / "missing", tmp_path / "dst", progress=False)
