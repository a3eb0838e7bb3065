"""Checkpoints load safely and refuse what does not fit."""

import os
import pickle

import pytest
import torch

from vgg_repro import checkpoints, models
from vgg_repro.errors import CheckpointError


def _net(name="A", classes=3):
    torch.manual_seed(0)
    return models.build(name, num_classes=classes, width=0.0625, crop_size=32, init="xavier")


def test_save_and_load_round_trip(tmp_path):
    net = _net()
    path = tmp_path / "a.pt"
    checkpoints.save_model(path, net, width=0.0625, classes=["cat", "dog", "owl"], scale_min=37)
    loaded, meta = checkpoints.model_from_checkpoint(path, arch="vgg11", num_classes=3)
    assert meta["classes"] == ["cat", "dog", "owl"] and meta["crop_size"] == 32
    assert meta["scale_min"] == 37  # extra description fields are kept
    assert not loaded.training
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), net.eval()(x))


def test_lightning_layout_with_net_prefix_loads(tmp_path):
    net = _net()
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    ckpt = {"vgg_repro": checkpoints.model_meta(net, 0.0625), "state_dict": state, "epoch": 3}
    torch.save(ckpt, tmp_path / "last.ckpt")
    loaded, _ = checkpoints.model_from_checkpoint(tmp_path / "last.ckpt")
    assert torch.equal(loaded.features[0].weight, net.features[0].weight)


class _RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_whose_pickle_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "payload": _RunsCode(marker)}, f)
    with pytest.raises(CheckpointError, match="refused to load .*evil.ckpt"):
        checkpoints.model_from_checkpoint(path)
    assert not marker.exists()


def test_wrong_configuration_or_classes_is_refused_naming_both(tmp_path):
    path = tmp_path / "a.pt"
    checkpoints.save_model(path, _net(), width=0.0625)
    with pytest.raises(CheckpointError, match="holds configuration A, not D"):
        checkpoints.model_from_checkpoint(path, arch="vgg16")
    with pytest.raises(CheckpointError, match="has 3 classes, the data has 10"):
        checkpoints.model_from_checkpoint(path, num_classes=10)


def test_missing_truncated_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.load_checkpoint(tmp_path / "nope.pt")
    path = tmp_path / "a.pt"
    checkpoints.save_model(path, _net(), width=0.0625)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*cut.pt"):
        checkpoints.load_checkpoint(tmp_path / "cut.pt")
    torch.save({"state_dict": _net().state_dict()}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no vgg_repro description"):
        checkpoints.model_from_checkpoint(tmp_path / "plain.pt")


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "model.pt"
    checkpoints.atomic_save({"v": torch.ones(1)}, path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        checkpoints.atomic_save({"v": Unsaveable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["v"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
