"""The ``mperror`` command line.

``mperror formats``            the preset formats and their derived values
``mperror round X [X ...]``    round numbers to a format with a mode, showing the error
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import torch

import mperror
from mperror import formats
from mperror.rounding import RoundMode


def _format_table() -> str:
    header = (
        f"{'name':7s} {'bits':>4s} {'p':>3s} {'emin':>5s} {'emax':>5s} {'max':>11s} "
        f"{'smallest normal':>16s} {'smallest subnorm':>16s} {'u = 2^-p':>10s} "
        f"{'inf':>3s} {'NaN':>3s} overflow"
    )
    rows = [header]
    for name, f in formats.PRESETS.items():
        rows.append(
            f"{name:7s} {f.bits:4d} {f.precision:3d} {f.emin:5d} {f.emax:5d} {f.max:11.4g} "
            f"{f.smallest_normal:16.4g} {f.smallest_subnormal:16.4g} {f.unit_roundoff:10.3g} "
            f"{'yes' if f.has_inf else 'no':>3s} {'yes' if f.has_nan else 'no':>3s} "
            f"{f.overflow.value}"
        )
    return "\n".join(rows)


def _cmd_formats(args: argparse.Namespace) -> int:
    print(_format_table())
    return 0


def _cmd_round(args: argparse.Namespace) -> int:
    fmt = formats.get(args.format)
    x = torch.tensor(args.values, dtype=torch.float64)
    generator = torch.Generator().manual_seed(args.seed)
    r = mperror.round(x, fmt, args.mode, generator=generator)
    print(f"{'x':>24s}  {'round(x)':>24s}  {'relative error':>14s}")
    for value, rounded in zip(x.tolist(), r.tolist(), strict=True):
        if value != 0 and math.isfinite(value) and math.isfinite(rounded):
            rel = f"{abs(rounded - value) / abs(value):14.3e}"
        else:
            rel = f"{'-':>14s}"
        print(f"{value!r:>24s}  {rounded!r:>24s}  {rel}")
    print(f"({fmt.name}, {RoundMode.parse(args.mode).value}; u = 2^-{fmt.precision})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mperror",
        description="What lower precision does to scientific ML, with proof and with measurement.",
    )
    parser.add_argument("--version", action="version", version=f"mperror {mperror.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_formats = sub.add_parser("formats", help="list the preset formats")
    p_formats.set_defaults(func=_cmd_formats)

    p_round = sub.add_parser("round", help="round numbers to a format")
    p_round.add_argument("values", nargs="+", type=float, metavar="X")
    p_round.add_argument("--format", "-f", default="fp16", help="a preset name (default fp16)")
    p_round.add_argument(
        "--mode", "-m", default="nearest_even", choices=[m.value for m in RoundMode]
    )
    p_round.add_argument("--seed", type=int, default=0, help="seed of the stochastic modes")
    p_round.set_defaults(func=_cmd_round)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ValueError as error:  # bad user input reaches the user as one clear line
        print(f"mperror {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
