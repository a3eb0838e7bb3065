#!/usr/bin/env bash
# bench/gpu_run.sh OUTDIR [--cpu-dry-run]: the project's one GPU run, in one command.
#
# On a CUDA machine whose Python has torch, torchvision, pytorch-lightning, torchmetrics,
# pillow, numpy, tqdm (and no dvc, dvclive, jsonargparse), it runs, each part under its
# own `timeout` and all of them inside one budget (GPU_RUN_BUDGET_S, 450 s) so that the
# script ends in under 8 minutes whatever happens; a part that fails or times out is
# reported and the next one runs:
#
#   nvidia_smi   the card, its driver and memory
#   wheels       the wheels carried in .whl/ installed into /tmp/site (PYTHONPATH)
#   info         Python, torch with its CUDA runtime and cuDNN, torchvision, Lightning and
#                the other packages the run imports (version and where each comes from)
#   synth        a tiny ImageNet-layout folder (`vgg-repro data synth`: 4 classes,
#                16 train + 4 val images each, shorter sides 256-320)
#   fit          `vgg-repro fit --config D_S256` for 4 steps on CUDA (net D at full width,
#                crops 224, bf16-mixed, channels_last by default on CUDA, fused SGD,
#                pinned memory), `--trainer.logger false` (no dvclive); the probe checks
#                each of those is in effect and writes OUTDIR/fit.json
#   evaluate     `vgg-repro evaluate` of that checkpoint on the val split, dense+multi-crop
#                at Q = 256, 384 (bf16 autocast + channels_last, the CUDA default);
#                OUTDIR/eval.json (the metrics) and OUTDIR/eval_probe.json
#   bench_perf   bench/bench_perf.py at full size on cuda: OUTDIR/perf.json (rewritten
#                after each measurement, "complete": true at the end)
#   fit_compile  `vgg-repro fit` with `--model.compile true`, 2 steps, no validation, if
#                the budget still allows; OUTDIR/fit_compile.json
#
# Then OUTDIR/summary.json (each part: status ok / TIMEOUT / FAIL(rc=N) / SKIPPED and its
# seconds) and the whole output in OUTDIR/log.txt. Exit status 0 only if every part is ok.
# The fit and evaluate parts run the console script's entry point, vgg_repro.cli.main, in
# a small probe (written to the work folder below) that adds read-only hooks: what
# `python -m vgg_repro.cli fit|evaluate ...` runs, plus checks.
#
# Through the device tool (the repository root is the working directory, $OUT comes back):
#
#   run(command='bash bench/gpu_run.sh "$OUT"', carry=[".whl"], timeout_s=540)
#
# carry=[".whl"] is needed: .whl/ is git-ignored (.git/info/exclude) and travels only when
# named. The wheels to carry (pure Python, py3-none-any; jsonargparse's other dependency,
# PyYAML, comes with pytorch-lightning, and typeshed-client's, typing-extensions, with torch):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp -d .whl \
#       jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0
#
# The same on a CPU, small (miniature nets, 32-pixel crops, bf16-mixed and channels_last
# forced on, a CPU budget of GPU_RUN_BUDGET_S=900), to test this script without a GPU:
#
#   PYTHON=/path/to/venv/bin/python bash bench/gpu_run.sh /tmp/gpu_dry --cpu-dry-run
#
# Settings (environment): PYTHON (python3), GPU_RUN_BUDGET_S, GPU_RUN_SITE (/tmp/site),
# GPU_RUN_WORK (a new folder under /tmp: data, runs, checkpoints; not copied to OUTDIR).
set -euo pipefail

usage="usage: bash bench/gpu_run.sh OUTDIR [--cpu-dry-run]"
OUTDIR=""
DRY=0
for arg in "$@"; do
    case $arg in
        --cpu-dry-run) DRY=1 ;;
        -h | --help) echo "$usage"; exit 0 ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *) OUTDIR=$arg ;;
    esac
done
[[ -n $OUTDIR ]] || { echo "$usage" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
PY=${PYTHON:-python3}
WORK=${GPU_RUN_WORK:-$(mktemp -d /tmp/gpu_run.XXXXXX)}
SITE=${GPU_RUN_SITE:-/tmp/site}
if ((DRY)); then
    BUDGET=${GPU_RUN_BUDGET_S:-900}
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
    BUDGET=${GPU_RUN_BUDGET_S:-450}
fi
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

PARTS=()

# part NAME MAX_SECONDS COMMAND...: COMMAND under `timeout`, never past the budget.
part() {
    local name=$1 max=$2
    shift 2
    local left=$((BUDGET - SECONDS - 10)) # 10 s: the kill grace and the summary
    if ((left < 15)); then
        echo "=== $name: SKIPPED (budget of ${BUDGET}s spent)"
        PARTS+=("$name SKIPPED 0")
        return 0
    fi
    local limit=$((max < left ? max : left))
    local start=$SECONDS rc=0 status
    echo
    echo "=== $name (at ${SECONDS}s, limit ${limit}s): $*"
    timeout -k 5 "$limit" "$@" || rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status=TIMEOUT ;;
        *) status="FAIL(rc=$rc)" ;;
    esac
    echo "=== $name: $status after $((SECONDS - start))s"
    PARTS+=("$name $status $((SECONDS - start))")
}

skip() { # skip NAME REASON
    echo
    echo "=== $1: SKIPPED ($2)"
    PARTS+=("$1 SKIPPED 0")
}

status_of() { # the status of part $1
    local p
    for p in "${PARTS[@]}"; do
        [[ ${p%% *} == "$1" ]] && { p=${p#* }; echo "${p%% *}"; return; }
    done
    echo none
}

write_probe() {
    cat >"$WORK/probe.py" <<'PYEOF'
"""gpu_run.sh's probe: `vgg-repro fit|evaluate ARGS` in-process, plus checks.

    python probe.py fit|evaluate OUT.json cuda|cpu ARGS...

Runs vgg_repro.cli.main([command, *ARGS]), the console script's entry point, with
read-only hooks: which device, precision, memory format, optimizer and loader the
run used, its losses, the dtype and memory format seen by the convolutions. Writes
what it saw to OUT.json and exits 1 if the fast path expected on the device is not
what ran.
"""

import json
import math
import sys
import traceback
from pathlib import Path

import torch

command, out, expect, args = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4:]


def arg(name, default=None):
    return args[args.index(name) + 1] if name in args else default


seen = {"command": command, "expect": expect, "args": args, "convs": [], "errors": []}
compile_ = arg("--model.compile", "false") == "true"
bf16 = command == "evaluate" or arg("--trainer.precision", "bf16-mixed") == "bf16-mixed"
cuda = expect == "cuda"


def conv_hook(module, inputs, output):  # the first 3 convolutions of each mode
    if not isinstance(module, torch.nn.Conv2d):
        return
    if sum(c["training"] is module.training for c in seen["convs"]) < 3:
        x = inputs[0]
        seen["convs"].append(
            {
                "training": module.training,
                "device": str(output.device),
                "input_dtype": str(x.dtype),
                "output_dtype": str(output.dtype),
                "input_channels_last": x.is_contiguous(memory_format=torch.channels_last),
                "input_contiguous": x.is_contiguous(),
            }
        )


if not compile_:  # a global hook inside a compiled graph would be traced into it
    torch.nn.modules.module.register_module_forward_hook(conv_hook)

state = {}
if command == "fit":
    import vgg_repro.training.module as M

    def on_train_start(self):
        try:
            conv = next(m for m in self.net.modules() if isinstance(m, torch.nn.Conv2d))
            w = conv.weight
            loader = self.trainer.train_dataloader
            seen.update(
                device=str(self.device),
                precision=str(self.trainer.precision),
                weight_channels_last=w.is_contiguous(memory_format=torch.channels_last)
                and not w.is_contiguous(),
                compiled=getattr(self.net, "_compiled_call_impl", None) is not None,
                fused_sgd=bool(self.trainer.optimizers[0].defaults.get("fused")),
                cudnn_benchmark=torch.backends.cudnn.benchmark,
                pin_memory=getattr(loader, "pin_memory", None),
                num_workers=getattr(loader, "num_workers", None),
            )
        except Exception as err:
            seen["errors"].append(f"on_train_start: {err!r}")
        state["trainer"] = self.trainer

    original_step = M.VGGClassifier.training_step

    def training_step(self, batch, batch_idx):
        loss = original_step(self, batch, batch_idx)
        try:
            if "first_step" not in seen:
                kind = batch[0].device.type
                seen["first_step"] = {
                    "input_device": str(batch[0].device),
                    "input_dtype": str(batch[0].dtype),
                    "autocast": torch.is_autocast_enabled(kind),
                    "autocast_dtype": str(torch.get_autocast_dtype(kind)),
                }
            seen.setdefault("losses", []).append(float(loss.detach()))
        except Exception as err:
            seen["errors"].append(f"training_step: {err!r}")
        return loss

    M.VGGClassifier.on_train_start = on_train_start
    M.VGGClassifier.training_step = training_step

from vgg_repro import cli  # noqa: E402

rc = None
try:
    rc = cli.main([command, *args])
except BaseException as err:  # noqa: B036 - a SystemExit of the CLI too: reported below
    seen["errors"].append("".join(traceback.format_exception(err))[-3000:])
seen["rc"] = rc
problems = []


def want(ok, what):
    if not ok:
        problems.append(what)


want(rc == 0, f"exit status {rc}")
device = "cuda" if cuda else "cpu"
if command == "fit":
    trainer = state.get("trainer")
    if trainer is not None:
        seen["global_step"] = trainer.global_step
        seen["callback_metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    losses = seen.get("losses", [])
    steps = int(arg("--trainer.max_steps", "-1"))
    want(len(losses) == steps, f"{len(losses)} training steps, not {steps}")
    want(all(math.isfinite(v) for v in losses), f"non-finite losses {losses}")
    want(str(seen.get("device", "")).startswith(device), f"device {seen.get('device')}")
    if bf16:
        want(seen.get("precision") == "bf16-mixed", f"precision {seen.get('precision')}")
        step = seen.get("first_step", {})
        want(step.get("autocast") is True, f"autocast {step.get('autocast')}")
        want(step.get("autocast_dtype") == "torch.bfloat16", f"autocast {step}")
    want(
        seen.get("weight_channels_last") is (cuda or arg("--model.channels_last") == "true"),
        f"channels_last weights {seen.get('weight_channels_last')}",
    )
    want(seen.get("compiled") is compile_, f"compiled {seen.get('compiled')}")
    want(seen.get("fused_sgd") is cuda, f"fused SGD {seen.get('fused_sgd')}")
    want(seen.get("pin_memory") is cuda, f"pin_memory {seen.get('pin_memory')}")
    if not compile_:
        train_convs = [c for c in seen["convs"] if c["training"]]
        want(train_convs, "no training convolution seen")
        for c in train_convs:
            if bf16:
                want(c["output_dtype"] == "torch.bfloat16", f"training conv {c}")
            want(c["input_channels_last"], f"training conv input not channels_last: {c}")
    root = Path(arg("--trainer.default_root_dir", "."))
    last = root / "checkpoints" / "last.ckpt"
    seen["checkpoint"] = str(last) if last.is_file() else None
    if last.is_file():
        from vgg_repro import checkpoints

        ckpt = checkpoints.load_checkpoint(last)
        keys = list(ckpt["state_dict"])
        want(not any("_orig_mod" in k for k in keys), "compiled names in the state dict")
        groups = ckpt["optimizer_states"][0]["param_groups"]
        seen["checkpoint_fused"] = groups[0].get("fused")
        seen["checkpoint_meta"] = ckpt.get(checkpoints.META_KEY)
    elif arg("--trainer.limit_val_batches") != "0":
        problems.append(f"no checkpoint {last}")
else:
    path = arg("--output")
    metrics = json.loads(Path(path).read_text()) if path and Path(path).is_file() else {}
    seen["metrics"] = {k: metrics.get(k) for k in ("top1_error", "top5_error", "n_images")}
    seen["metrics"] |= {k: metrics.get(k) for k in ("precision", "device", "scales")}
    want(metrics.get("precision") == "bf16", f"precision {metrics.get('precision')}")
    want(str(metrics.get("device", "")).startswith(device), f"device {metrics.get('device')}")
    for k in ("top1_error", "top5_error"):
        want(isinstance(metrics.get(k), float) and math.isfinite(metrics[k]), f"{k} {metrics}")
    want(seen["convs"], "no convolution seen")
    for c in seen["convs"]:
        want(c["output_dtype"] == "torch.bfloat16", f"evaluation conv {c}")
        want(c["input_channels_last"], f"evaluation conv input not channels_last: {c}")
seen["problems"] = problems
out.write_text(json.dumps(seen, indent=2, default=str) + "\n")
print(f"probe {command}: {'OK' if not problems else 'PROBLEMS'}; wrote {out}")
for p in problems:
    print(f"  - {p}")
for e in seen["errors"]:
    print(f"  error: {e}")
sys.exit(0 if not problems else 1)
PYEOF
}

write_summary() {
    local p first=1 name rest status secs
    {
        printf '{\n  "mode": "%s",\n  "budget_s": %d,\n  "total_s": %d,\n  "parts": [\n' \
            "$([[ $DRY == 1 ]] && echo cpu-dry-run || echo gpu)" "$BUDGET" "$SECONDS"
        for p in "${PARTS[@]}"; do
            name=${p%% *}
            rest=${p#* }
            status=${rest%% *}
            secs=${rest##* }
            ((first)) || printf ',\n'
            first=0
            printf '    {"part": "%s", "status": "%s", "seconds": %d}' "$name" "$status" "$secs"
        done
        printf '\n  ]\n}\n'
    } >"$OUTDIR/summary.json"
}

main() {
    echo "gpu_run.sh: mode $([[ $DRY == 1 ]] && echo cpu-dry-run || echo gpu), budget ${BUDGET}s"
    echo "repository $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
    echo "output $OUTDIR, work folder $WORK, python $PY"
    if command -v nvidia-smi >/dev/null 2>&1; then
        part nvidia_smi 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    elif ((DRY)); then
        echo "nvidia-smi: not on this machine (a CPU dry run)"
    else
        skip nvidia_smi "no nvidia-smi on this machine"
    fi
    echo "cpu cores: $(nproc), memory: $(free -g 2>/dev/null | awk '/^Mem:/{print $2 " GiB"}')"
    df -h /tmp 2>/dev/null | tail -1 || true

    if compgen -G ".whl/*.whl" >/dev/null; then
        if "$PY" -m pip --version >/dev/null 2>&1; then
            part wheels 60 "$PY" -m pip install -q --no-index --no-deps --upgrade \
                --target "$SITE" .whl/*.whl
        else # no pip: pure-Python wheels are zip files laid out for site-packages
            part wheels 60 "$PY" -c "import glob, sys, zipfile
for w in sorted(glob.glob('.whl/*.whl')):
    zipfile.ZipFile(w).extractall(sys.argv[1]); print('unpacked', w)" "$SITE"
        fi
        export PYTHONPATH="$SITE:$PYTHONPATH"
    else
        skip wheels "no .whl/ folder: carry it with carry=[\".whl\"]"
    fi

    part info 60 "$PY" - <<'PYEOF'
import importlib, platform, sys
import torch, torchvision
print("python", sys.version.split()[0], platform.platform())
print("torch", torch.__version__, "| CUDA runtime", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version(), "| CUDA available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"| {p.total_memory / 2**30:.0f} GiB | capability",
          f"{p.major}.{p.minor} | bf16", torch.cuda.is_bf16_supported(),
          "| devices", torch.cuda.device_count())
print("torchvision", torchvision.__version__)
for name in ("pytorch_lightning", "lightning", "torchmetrics", "jsonargparse", "docstring_parser",
             "typeshed_client", "yaml", "triton", "timm", "PIL", "numpy", "tqdm", "rich",
             "dvc", "dvclive"):
    try:
        m = importlib.import_module(name)
        print(f"{name:<18} {getattr(m, '__version__', '?'):<12} {getattr(m, '__file__', '')}")
    except Exception as err:
        print(f"{name:<18} not importable ({type(err).__name__})")
PYEOF

    local expect=cuda data="$WORK/data"
    local sides=(256 320) per=(16 4)
    local fit_common=(--config D_S256)
    local fit_size=(--data.batch_size 16 --data.num_workers 4)
    local eval_extra=(--scales "256,384" --workers 4)
    local perf=(--device cuda)
    if ((DRY)); then
        expect=cpu
        sides=(40 64)
        per=(4 2)
        fit_common+=(--config miniature --trainer.accelerator cpu
            --trainer.precision bf16-mixed --model.channels_last true)
        fit_size=(--data.batch_size 4 --data.num_workers 1)
        eval_extra=(--scales "37,55" --workers 1 --device cpu --precision bf16)
        perf=(--device cpu --steps 2)
    fi
    fit_common+=(--model.init_from_a null --data.root "$data" --trainer.devices 1
        --trainer.logger false --trainer.enable_progress_bar false
        --trainer.enable_model_summary false --trainer.log_every_n_steps 1 "${fit_size[@]}")
    write_probe

    part synth 60 "$PY" -m vgg_repro.cli data synth --out "$data" --classes 4 \
        --train-per-class "${per[0]}" --val-per-class "${per[1]}" \
        --min-side "${sides[0]}" --max-side "${sides[1]}"

    if ! "$PY" -c "import jsonargparse, docstring_parser, typeshed_client" 2>/dev/null; then
        skip fit "jsonargparse[signatures] is not importable: carry the wheels in .whl/"
    elif [[ $(status_of synth) != ok ]]; then
        skip fit "no data"
    else
        part fit 90 "$PY" "$WORK/probe.py" fit "$OUTDIR/fit.json" "$expect" \
            "${fit_common[@]}" --trainer.max_steps 4 --trainer.default_root_dir "$WORK/fit"
    fi

    local ckpt="$WORK/fit/checkpoints/last.ckpt"
    if [[ -f $ckpt ]]; then
        part evaluate 60 "$PY" "$WORK/probe.py" evaluate "$OUTDIR/eval_probe.json" "$expect" \
            --ckpt "$ckpt" --data "$data/val" --protocol dense+multi-crop \
            --batch-size 4 --quiet --output "$OUTDIR/eval.json" "${eval_extra[@]}"
    else
        skip evaluate "no checkpoint from the fit part"
    fi

    part bench_perf 300 "$PY" bench/bench_perf.py "${perf[@]}" --out "$OUTDIR/perf.json"

    if [[ $(status_of fit) == ok ]]; then
        part fit_compile 120 "$PY" "$WORK/probe.py" fit "$OUTDIR/fit_compile.json" "$expect" \
            "${fit_common[@]}" --model.compile true --trainer.max_steps 2 \
            --trainer.limit_val_batches 0 --trainer.default_root_dir "$WORK/fit_compile"
    else
        skip fit_compile "the fit part did not pass"
    fi

    write_summary
    echo
    echo "=== summary (${SECONDS}s of ${BUDGET}s)"
    local p bad=0
    for p in "${PARTS[@]}"; do
        printf '  %-12s %-12s %ss\n' $p
        [[ $p == *" ok "* ]] || bad=1
    done
    echo "files in $OUTDIR: $(cd "$OUTDIR" && ls | tr '\n' ' ')"
    return $bad
}

main 2>&1 | tee "$OUTDIR/log.txt"
