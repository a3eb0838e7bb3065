"""Saving and loading network weights safely.

A checkpoint is a dict with two keys that matter here:

- ``"vgg_repro"``: what the network is, ``{"arch", "num_classes", "width",
  "crop_size", "dropout", "classes"}`` (``classes``: the class folder names,
  in label order, or ``None``);
- ``"state_dict"``: its weights, with keys as in :class:`vgg_repro.models.VGG`,
  or prefixed by ``net.`` in a Lightning checkpoint (the LightningModule keeps
  the network as ``self.net`` and adds the ``"vgg_repro"`` entry when saving).

Loading never unpickles arbitrary objects: ``torch.load(weights_only=True)``
refuses anything but tensors and plain containers, so a downloaded checkpoint
cannot run code.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from vgg_repro import models
from vgg_repro.errors import CheckpointError
from vgg_repro.files import atomic_write

META_KEY = "vgg_repro"
META_FIELDS = ("arch", "num_classes", "width", "crop_size", "dropout", "classes")


def model_meta(model: models.VGG, width: float, classes: list[str] | None = None) -> dict:
    """The ``"vgg_repro"`` entry describing ``model`` (width is not recoverable from it)."""
    return {
        "arch": model.name,
        "num_classes": model.num_classes,
        "width": float(width),
        "crop_size": model.crop_size,
        "dropout": float(model.classifier[2].p),
        "classes": list(classes) if classes is not None else None,
    }


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: a kill mid-write leaves the old file."""
    with atomic_write(path, binary=True, sync=True) as f:
        torch.save(obj, f)


def save_model(
    path: str | os.PathLike,
    model: models.VGG,
    width: float,
    classes: list[str] | None = None,
    **extra: Any,
) -> dict:
    """Save a network's weights and description, atomically.

    ``extra`` adds plain values to the description (the pipeline records the
    training scale and input normalisation there); returns the description.
    """
    meta = model_meta(model, width, classes) | extra
    atomic_save({META_KEY: meta, "state_dict": model.state_dict()}, path)
    return meta


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing, is not a checkpoint (empty, truncated,
            random bytes, another format: "not a checkpoint (...)"), or holds a pickled
            object other than tensors and plain containers, which could run code
            ("refused to load"); nothing from it is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(err))
        name = found.group(1) if found else _foreign_global(path)
        if name is None:  # torch's weights-only reader failed on the bytes themselves
            raise CheckpointError(_unreadable(path, err)) from None
        raise CheckpointError(
            f"refused to load {path}: it contains the pickled object {name}, which "
            "is neither a tensor nor a plain container and could run code when loaded. Only "
            "load checkpoints from sources you trust; re-save trusted ones with "
            "vgg_repro.checkpoints.save_model."
        ) from None
    except Exception as err:  # empty, truncated, not a torch file, ...
        raise CheckpointError(_unreadable(path, err)) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a checkpoint (a {type(ckpt).__name__}, not a dict)")
    return ckpt


# Globals that torch's weights-only reader allows (tensor rebuilding, plain containers).
_SAFE_MODULES = ("torch", "collections", "builtins", "numpy", "_codecs")


def _foreign_global(path: Path) -> str | None:
    """The first global outside torch's safe set named in the file's pickle, or None.

    Read with :func:`pickletools.genops`, which parses the opcodes and runs nothing:
    torch's reader stops at the first opcode it does not support (the framing of
    pickle protocol 4, say) before it reaches a global, so its message may not name it.
    """
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not names:
                return None
            data = archive.read(names[0])
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if isinstance(arg, str):
                strings.append(arg)
            if opcode.name == "GLOBAL":
                name = str(arg).replace(" ", ".")
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            else:
                continue
            if not name.startswith(_SAFE_MODULES):
                return name
    except Exception:  # not a pickle at all
        return None
    return None


def _unreadable(path: Path, err: Exception) -> str:
    """The one-line reason a file that torch cannot read is not a checkpoint."""
    if path.stat().st_size == 0:
        why = "the file is empty"
    elif isinstance(err, RuntimeError) and "zip" in str(err):
        why = "a damaged or truncated zip archive"
    elif isinstance(err, EOFError):
        why = "the file ends too early"
    else:
        why = "not a file written by torch.save"
    return (
        f"cannot read checkpoint {path}: not a checkpoint ({why}); give a file written by "
        "vgg-repro fit or save_model, or torchvision weights with --torchvision"
    )


def checkpoint_meta(ckpt: dict, path: str | os.PathLike = "checkpoint") -> dict:
    """The ``"vgg_repro"`` description of a loaded checkpoint."""
    meta = ckpt.get(META_KEY)
    if not isinstance(meta, dict) or not all(k in meta for k in META_FIELDS):
        raise CheckpointError(
            f"{path} has no vgg_repro description (arch, classes, width...): it was not "
            "written by vgg-repro. For torchvision weights use vgg_repro.models.from_torchvision."
        )
    return meta


def model_from_checkpoint(
    path: str | os.PathLike,
    arch: str | None = None,
    num_classes: int | None = None,
) -> tuple[models.VGG, dict]:
    """Rebuild the network stored in a checkpoint, on the CPU, in eval mode.

    Args:
        path: a file from :func:`save_model` or a Lightning checkpoint of vgg-repro.
        arch: if given, the configuration the caller expects.
        num_classes: if given, the class count the caller expects.

    Returns:
        The network and its description (see :data:`META_FIELDS`).

    Raises:
        CheckpointError: unsafe or unreadable file, or a configuration or class
            count other than the expected one (the message names both).
    """
    return model_from_loaded(load_checkpoint(path), path, arch, num_classes)


def model_from_loaded(
    ckpt: dict,
    path: str | os.PathLike = "checkpoint",
    arch: str | None = None,
    num_classes: int | None = None,
) -> tuple[models.VGG, dict]:
    """:func:`model_from_checkpoint` for a checkpoint already read by :func:`load_checkpoint`.

    For callers that need other entries of the same file, so that it is read once.
    """
    meta = checkpoint_meta(ckpt, path)
    if arch is not None and models.canonical_name(arch) != meta["arch"]:
        raise CheckpointError(
            f"{path} holds configuration {meta['arch']}, not {models.canonical_name(arch)} "
            "as requested; pass the checkpoint's configuration or another checkpoint"
        )
    if num_classes is not None and num_classes != meta["num_classes"]:
        raise CheckpointError(
            f"{path} has {meta['num_classes']} classes, the data has {num_classes}; "
            "evaluate it on the dataset it was trained for"
        )
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} has no state_dict")
    if any(k.startswith("net.") for k in state):  # a Lightning checkpoint
        state = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    model = models.build_meta(
        meta["arch"],
        num_classes=meta["num_classes"],
        width=meta["width"],
        dropout=meta["dropout"],
        crop_size=meta["crop_size"],
    )
    try:
        # The file's tensors become the parameters: no second copy, and no
        # to_empty(), whose meta-tensor path imports half a second of torch.fx.
        models.load_state_dict_checked(model, state, str(path), assign=True)
    except models.ConfigError as err:
        raise CheckpointError(str(err)) from None
    return model.eval(), meta
