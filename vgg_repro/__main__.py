"""``python -m vgg_repro``: the ``vgg-repro`` command, where its script is not on the PATH."""

import sys

from vgg_repro.cli import main

if __name__ == "__main__":
    sys.exit(main())
