#!/usr/bin/env bash
# Every short GPU check the issues ask for, as one batch sized for a device lease (at most
# 9.9 min: the limits below add up to 470 s, 575 s with the 15 s grace after each of the seven,
# under a device command's 600 s; each step has its own limit, so one slow step cannot starve
# the others, and a step stopped at its limit keeps what it printed: output is unbuffered and
# the stop is a SIGINT, on which pytest still prints its summary). Run from the repository root
# on a machine with CUDA:
#
#   OUT=/some/dir PYTHONPATH=.device-deps:. bash experiments/gpu_checks.sh
#
# (PYTHON=... picks the interpreter; default `python3`, else `python`.) A machine without
# network may lack mperror's pure-Python dependencies opt_einsum (the FNO's contractions) and
# tqdm (training runs): copy their package folders from a machine that has them into
# .device-deps/ (ignored by git) and carry that folder along, e.g.
#   mkdir -p .device-deps && for m in opt_einsum tqdm; do cp -r "$(python -c \
#     "import $m, os; print(os.path.dirname($m.__file__))")" .device-deps/; done
# The env step says which dependencies and which C compiler (triton's launcher needs one on the
# first compiled CUDA kernel) the machine has.
# Writes at most eight files to $OUT (default gpu-checks/): env.txt, pytest-gpu.txt,
# bench-rounding.txt, exhaustive.txt, exhaustive-addition.txt (the float32-addition path that
# nearest even takes to fp16, e5m2 and e4m3fn where torch's cast is not used),
# exhaustive-compiled.txt, cufft.txt, cufft.json. Record
# what they say in experiments/RESULTS.md with the GPU's name. The long runs (mperror verify
# --full --device cuda, the FNO studies) are not part of this batch: see RESULTS.md's list.
set -u
out=${OUT:-gpu-checks}
py=${PYTHON:-$(command -v python3 || command -v python || echo python3)}
export PYTHONUNBUFFERED=1
mkdir -p "$out"

step() {  # step NAME SECONDS COMMAND...: the command's output, wall time and exit status
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit} s): $*"
  timeout -s INT -k 15 "$limit" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  echo "exit status $rc after $((SECONDS - start)) s (124: ran past the limit)" >>"$out/$name.txt"
  tail -n 3 "$out/$name.txt"
}

step env 30 bash -c 'nvidia-smi; echo "C compiler: $(command -v cc gcc | head -n 1)"; '"$py"' -c "\
import importlib.util as u; print({m: u.find_spec(m) is not None for m in (\"opt_einsum\", \
\"tqdm\", \"matplotlib\", \"hypothesis\", \"triton\")}, \"(modules found)\")"; '"$py"' -c "import torch, mperror; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else \"no CUDA\", mperror.__version__); \
from mperror import rounding as r; \
torch.cuda.is_available() and print({f.name: r._cast_agrees(f, d, \"cuda\") for f, d in r._NATIVE_CASTS.items()}, \"(cuda casts)\"); \
print({f.name: r._cast_agrees(f, d, \"cpu\") for f, d in r._NATIVE_CASTS.items()}, \"(cpu casts)\")"'
step pytest-gpu 175 "$py" -m pytest -m gpu -q -p no:cacheprovider -rs
step bench-rounding 85 "$py" experiments/bench_rounding.py --device cuda --n 100000000 --compiled
step exhaustive 45 "$py" experiments/exhaustive_check.py --device cuda
step exhaustive-addition 35 "$py" experiments/exhaustive_check.py --device cuda --addition \
  --formats fp16 e5m2 e4m3fn
step exhaustive-compiled 60 "$py" experiments/exhaustive_check.py --device cuda --compiled
step cufft 40 "$py" experiments/compare_cufft.py --json "$out/cufft.json"
