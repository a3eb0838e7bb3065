"""The DVC pipeline (``dvc.yaml``): one small module per stage, plus the report.

``dvc repro`` runs the stages in the order of the paper's experiment graph
(Sec. 3.1, 4.1 to 4.4); each is also a command, run from the repository root::

    python -m vgg_repro.pipeline.copy_data data/miniature data/pinned
    python -m vgg_repro.pipeline.check_data        # the copy against data/pins.yaml
    python -m vgg_repro.pipeline.train A s256      # net A from random init
    python -m vgg_repro.pipeline.train D s384      # fine-tuned from D at S=256
    python -m vgg_repro.pipeline.evaluate D jitter
    python -m vgg_repro.pipeline.fuse              # D+E (Table 6)
    python -m vgg_repro.pipeline.report            # Tables 3-6 and the claims check

Modules: :mod:`~vgg_repro.pipeline.common` (the profile, the rows of Table 3, the
paths), one per stage (:mod:`~vgg_repro.pipeline.copy_data`,
:mod:`~vgg_repro.pipeline.check_data`,
:mod:`~vgg_repro.pipeline.train`, :mod:`~vgg_repro.pipeline.evaluate`,
:mod:`~vgg_repro.pipeline.fuse`, :mod:`~vgg_repro.pipeline.report`) and
:mod:`~vgg_repro.pipeline.claims`, the paper's claims and their rules. Each stage
only wires library functions (:mod:`vgg_repro.training`, :mod:`vgg_repro.evaluation`)
and lists exactly the files it imports as its ``deps`` in ``dvc.yaml``, so an edit
to the report or the fusion retrains no net. This file imports nothing.
"""
