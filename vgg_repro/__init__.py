"""vgg_repro: a reproduction of Simonyan & Zisserman, "Very Deep Convolutional
Networks for Large-Scale Image Recognition" (ICLR 2015).

Modules, one per concept of the paper:

- :mod:`vgg_repro.models`: Table 1 as data, the builder, the dense form, weight conversion.
- :mod:`vgg_repro.errors`: the errors a user can act on.
"""

__version__ = "0.1.0"
