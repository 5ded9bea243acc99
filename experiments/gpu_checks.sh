#!/usr/bin/env bash
# Every short GPU check the issues ask for, as one batch sized for a device lease (about 9 min of
# GPU time after the machine starts; each step has its own time limit, so one slow step cannot
# starve the others). Run from the repository root on a machine with CUDA:
#
#   OUT=/some/dir PYTHONPATH=. bash experiments/gpu_checks.sh
#
# Writes at most seven files to $OUT (default gpu-checks/): env.txt, pytest-gpu.txt,
# bench-rounding.txt, exhaustive.txt, exhaustive-compiled.txt, cufft.txt, cufft.json. Record
# what they say in experiments/RESULTS.md with the GPU's name. The long runs (mperror verify
# --full --device cuda, the FNO studies) are not part of this batch: see RESULTS.md's list.
set -u
out=${OUT:-gpu-checks}
mkdir -p "$out"

step() {  # step NAME SECONDS COMMAND...: the command's output, wall time and exit status
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit} s): $*"
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  echo "exit status $rc after $((SECONDS - start)) s (124: ran past the limit)" >>"$out/$name.txt"
  tail -n 3 "$out/$name.txt"
}

step env 60 bash -c 'nvidia-smi; python -c "import torch, mperror; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(), mperror.__version__); \
from mperror import rounding as r; \
print({f.name: r._cast_agrees(f, d, \"cuda\") for f, d in r._NATIVE_CASTS.items()}, \"(cuda casts)\"); \
print({f.name: r._cast_agrees(f, d, \"cpu\") for f, d in r._NATIVE_CASTS.items()}, \"(cpu casts)\")"'
step pytest-gpu 240 python -m pytest -m gpu -q -p no:cacheprovider -rs
step bench-rounding 120 python experiments/bench_rounding.py --device cuda --n 100000000 --compiled
step exhaustive 60 python experiments/exhaustive_check.py --device cuda
step exhaustive-compiled 90 python experiments/exhaustive_check.py --device cuda --compiled
step cufft 60 python experiments/compare_cufft.py --json "$out/cufft.json"
