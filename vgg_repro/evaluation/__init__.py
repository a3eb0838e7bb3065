"""Testing as in Sec. 3.2 of the paper: the protocols, their scales, the runner over a folder.

Modules, read in this order:

- :mod:`~vgg_repro.evaluation.protocols`: dense, multi-crop, multi-scale, fusion and
  top-k error, as pure functions of ``(net, images)``;
- :mod:`~vgg_repro.evaluation.scales`: the test scales Q of a training scale S, the one
  rule that every part of the package uses;
- :mod:`~vgg_repro.evaluation.networks`: the networks to test, from a checkpoint or
  torchvision's weights;
- :mod:`~vgg_repro.evaluation.runner`: every protocol of the same nets from one pass
  over a folder of images;
- :mod:`~vgg_repro.evaluation.paired`: paired tests of two classifiers on the same
  images (exact McNemar, paired bootstrap), which decide the paper's claims;
- :mod:`~vgg_repro.evaluation.tables`: results in the layout of Tables 3 to 6;
- :mod:`~vgg_repro.evaluation.cli`: ``vgg-repro evaluate``.

The protocols, the scales and the runner are importable from here
(``from vgg_repro.evaluation import dense_evaluate, evaluate_folder``); the paired
tests, the tables and the command line are not, so that evaluating depends on no
statistics or rendering code.
"""

from vgg_repro.evaluation.networks import EvalNet, load_network, load_torchvision
from vgg_repro.evaluation.protocols import (
    PROTOCOLS,
    ScoreMapNet,
    average_posteriors,
    crop_grid,
    dense_and_multi_crop,
    dense_evaluate,
    fusion,
    multi_crop,
    multi_scale,
    preprocess,
    rescale,
    rescaled_size,
    topk_correct,
    topk_error,
)
from vgg_repro.evaluation.runner import (
    eval_precision,
    evaluate_folder,
    evaluate_protocols,
    find_images,
)
from vgg_repro.evaluation.scales import resolve_scales, test_scales

__all__ = [
    "PROTOCOLS",
    "EvalNet",
    "ScoreMapNet",
    "average_posteriors",
    "crop_grid",
    "dense_and_multi_crop",
    "dense_evaluate",
    "eval_precision",
    "evaluate_folder",
    "evaluate_protocols",
    "find_images",
    "fusion",
    "load_network",
    "load_torchvision",
    "multi_crop",
    "multi_scale",
    "preprocess",
    "rescale",
    "rescaled_size",
    "resolve_scales",
    "test_scales",
    "topk_correct",
    "topk_error",
]
