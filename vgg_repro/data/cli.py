"""``vgg-repro data``: the dataset tools.

vgg-repro data stats ROOT [--output stats.json]     # mean RGB + RGB PCA of ROOT/train
vgg-repro data convert-val FLAT_VAL LABELS --output ROOT/val [--synsets FILE] [--copy]
vgg-repro data synth ...                             # the miniature dataset
vgg-repro data prepare SRC DST --max-side N          # shrink images once, for speed
vgg-repro data split SRC --out ROOT --train-per-class 30   # train/ and test/ (Appendix B)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vgg_repro.files import write_text


def main(argv: list[str]) -> int:
    """``vgg-repro data stats|convert-val|synth|prepare|split``."""
    if argv and argv[0] == "synth":
        from vgg_repro.data import synth

        return int(synth.main(argv[1:]) or 0)
    if argv and argv[0] == "split":
        from vgg_repro.data import split

        return int(split.main(argv[1:]) or 0)
    if argv and argv[0] == "prepare":
        from vgg_repro.data import prepare

        return int(prepare.main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="vgg-repro data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("synth", help="write the miniature dataset (see 'vgg-repro data synth --help')")
    sub.add_parser("prepare", help="shrink images to the largest S/Q, once, for faster loading")
    sub.add_parser("split", help="split CLASS folders into train/ and test/ (Caltech, Table 11)")
    p = sub.add_parser("stats", help="mean RGB and RGB PCA of ROOT/train (for data.stats)")
    p.add_argument("root")
    p.add_argument("--output", "-o", help="write JSON here (default: print it)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--size", type=int, default=256, help="rescale shorter side first (0: off)")
    p.add_argument("--skip-bad-files", action="store_true")
    p = sub.add_parser("convert-val", help="sort the flat official val folder into CLASS folders")
    p.add_argument("flat_dir")
    p.add_argument("labels", help="FILE CLASS lines, LOC_val_solution.csv or devkit ground truth")
    p.add_argument("--output", "-o", required=True, help="e.g. ROOT/val")
    p.add_argument("--synsets", help="class name per line, for integer labels")
    p.add_argument("--mode", choices=["symlink", "copy", "move"], default="symlink")
    args = parser.parse_args(argv)
    from vgg_repro.data.imagenet import convert_val
    from vgg_repro.data.stats import compute_stats

    if args.cmd == "stats":
        stats = compute_stats(args.root, args.max_images, args.size or None, args.skip_bad_files)
        text = json.dumps(stats, indent=2)
        if args.output:
            out = Path(args.output)
            write_text(out, text + "\n")  # atomic: a reader never sees half a file
            print(f"wrote {args.output} ({stats['num_images']} images)", file=sys.stderr)
        else:
            print(text)
    else:
        n = convert_val(args.flat_dir, args.labels, args.output, args.synsets, args.mode)
        print(f"{n} images sorted into {args.output}")
    return 0
