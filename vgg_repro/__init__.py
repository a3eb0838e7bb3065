"""vgg_repro: a reproduction of Simonyan & Zisserman, "Very Deep Convolutional
Networks for Large-Scale Image Recognition" (ICLR 2015).

One module or subpackage per concept of the paper, data flowing one way:

- :mod:`vgg_repro.models`: Table 1 as data, the builder, the dense form, weight
  conversion; plain ``nn.Module``s;
- :mod:`vgg_repro.checkpoints`: saving and loading weights safely;
- :mod:`vgg_repro.paper`: the paper's results, to print beside ours;
- :mod:`vgg_repro.data`: image folders, decoding, the paper's transforms, the
  shipped-data generator;
- :mod:`vgg_repro.training`: the recipe of Sec. 3.1 on Lightning, and ``vgg-repro fit``;
- :mod:`vgg_repro.evaluation`: the test protocols of Sec. 3.2, one runner over a
  folder, ``vgg-repro evaluate``;
- :mod:`vgg_repro.pipeline`: one small module per stage of ``dvc.yaml``, and the report;
- :mod:`vgg_repro.i18n`: the documentation's glossary and catalogue checks;
- :mod:`vgg_repro.errors`: the errors a user can act on;
- :mod:`vgg_repro.cli`: the ``vgg-repro`` command, a thin dispatcher.

``vgg_repro.load(path)`` returns a trained net with its preprocessing
(:func:`vgg_repro.evaluation.networks.load`).
"""

import importlib

__version__ = "0.1.0"
__all__ = ["__version__", "load"]


def __getattr__(name: str):
    """``vgg_repro.load``: :func:`vgg_repro.evaluation.networks.load`, imported on first use.

    Lazily (PEP 562), by name: ``import vgg_repro`` stays free of torch, and the
    package's own modules, which import it first, do not depend on evaluation code.
    """
    if name == "load":
        return importlib.import_module("vgg_repro.evaluation.networks").load
    raise AttributeError(f"module 'vgg_repro' has no attribute {name!r}")
