"""The data: image folders, decoding, the paper's transforms, colour statistics.

Modules, read in this order:

- :mod:`~vgg_repro.data.folders`: the ``ROOT/{train,val}/CLASS/IMAGE`` layout and its checks;
- :mod:`~vgg_repro.data.images`: decoding any image as RGB, the folder dataset, its sampler;
- :mod:`~vgg_repro.data.transforms`: isotropic rescaling, scale jittering, crops, flips and
  the colour shift of Sec. 3.1;
- :mod:`~vgg_repro.data.stats`: the mean RGB and RGB PCA of a training set;
- :mod:`~vgg_repro.data.imagenet`: ILSVRC-2012's flat validation folder sorted by class;
- :mod:`~vgg_repro.data.synth`: the generator of the shipped miniature dataset;
- :mod:`~vgg_repro.data.prepare`: images shrunk once to the largest scale used;
- :mod:`~vgg_repro.data.cli`: ``vgg-repro data``.

Import what you need from its module (``from vgg_repro.data.images import
ImageFolder``): this file imports nothing, so that a stage of the pipeline that
reads only the folder layout (the data check) neither loads PyTorch nor depends
on the code of the others.
"""
