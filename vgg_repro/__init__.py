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
"""

__version__ = "0.1.0"
