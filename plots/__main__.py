"""``python -m plots [NAME ...] [--out DIR] [--quick] [--list]``: draw the gallery.

With no names, every default figure is drawn into ``figures/``; opt-in figures (marked
so in ``--list``, e.g. the ``speed`` benchmark) are drawn only when named.  ``--quick``
draws small previews, so without ``--out`` it writes them to a fresh scratch folder
(printed), never over the committed gallery in ``figures/``.  One line per
figure: name, PNG path, seconds, and for comparison figures the worst
``|minireg - torch|`` it shows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from plots import FIGURES, GROUPS, OPT_IN, resolve_names

# The figures multiply small matrices; BLAS worker threads only contend for the cores
# (10x slower on a busy 2-core machine) and make float reductions order-dependent.  Set
# before NumPy is first imported (the figure modules import it, when they are drawn; none
# of the imports above does); an explicit setting in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plots",
        description="Draw the minireg gallery (PNG files), comparing minireg with torch.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="figures to draw (default: all but the opt-in ones); see --list",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder, created if needed (default: figures; with --quick a fresh "
        "scratch folder, printed)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small, fast versions (for tests and previews); never overwrites figures/ "
        "unless --out says so",
    )
    parser.add_argument("--list", action="store_true", help="list figure names and exit")
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write every figure's result (paths, seconds, gap, tolerance, notes) as JSON",
    )
    parser.add_argument(
        "--debug", action="store_true", help="let a failing figure raise with its traceback"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="threads for torch's intra-op work and for minireg's optimizer steps alike "
        "(default 1: deterministic torch reductions; the speed benchmark reports what was used)",
    )
    return parser


def _list() -> None:
    width = max(map(len, [*FIGURES, *OPT_IN, *GROUPS]))
    for name, (_, _, description) in FIGURES.items():
        print(f"{name:<{width}}  {description}")
    for name, (_, _, description) in OPT_IN.items():
        print(f"{name:<{width}}  (opt-in: drawn only when named) {description}")
    for name, members in GROUPS.items():
        print(f"{name:<{width}}  (group) {', '.join(members)}")


def _format_gap(result: object) -> str:
    gap = getattr(result, "gap", None)
    if gap is None:
        return ""
    tolerance = getattr(result, "tolerance", None)
    bound = "" if tolerance is None else f" (tol {tolerance:.0e})"
    return f"  worst |minireg-torch| {gap:.2e}{bound}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        _list()
        return 0
    names, unknown = resolve_names(args.names or list(FIGURES))
    if unknown:
        choices = ", ".join([*FIGURES, *OPT_IN, *GROUPS])
        print(
            f"python -m plots: unknown figure name(s): {', '.join(unknown)}\n"
            f"choose from: {choices} (or run with --list)",
            file=sys.stderr,
        )
        return 2

    # Deterministic, and the same reduction order as the tests' reference data.
    try:
        import torch
    except ImportError:
        print(
            "torch is not installed: figures draw minireg alone; the fidelity dashboard is skipped",
            file=sys.stderr,
        )
    else:
        torch.set_num_threads(max(1, args.threads))
    import minireg

    minireg.set_num_threads(max(1, args.threads))

    from plots._style import MissingDependency, NeedsTorch

    if args.out is not None:
        out_dir = Path(args.out)
    elif args.quick:  # previews must not overwrite the committed gallery
        out_dir = Path(tempfile.mkdtemp(prefix="minireg-gallery-quick-"))
        print(f"--quick without --out: drawing into the scratch folder {out_dir}/", flush=True)
    else:
        out_dir = Path("figures")
    records: list[dict[str, object]] = []
    failures = 0
    start = time.perf_counter()
    for name in names:
        module_name, function_name, _ = FIGURES[name] if name in FIGURES else OPT_IN[name]
        began = time.perf_counter()
        try:
            draw = getattr(importlib.import_module(module_name), function_name)
            result = draw(out_dir, quick=args.quick)
        except NeedsTorch as exc:
            print(f"{name:<24} skipped: {exc}", file=sys.stderr)
            records.append({"name": name, "status": "skipped", "reason": str(exc)})
            continue
        except MissingDependency as exc:
            failures += 1
            print(f"{name:<24} not drawn: {exc}", file=sys.stderr)
            records.append({"name": name, "status": "missing", "reason": str(exc)})
            continue
        except Exception as exc:  # one broken figure must not stop the gallery
            if args.debug:
                raise
            failures += 1
            print(
                f"{name:<24} FAILED after {time.perf_counter() - began:.1f}s: "
                f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                file=sys.stderr,
            )
            records.append(
                {"name": name, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            )
            continue
        records.append(
            {
                "name": name,
                "status": "drawn",
                "paths": [str(p) for p in result.paths],
                "seconds": result.seconds,
                "gap": result.gap,
                "tolerance": result.tolerance,
                "notes": result.notes,
                "data": result.data,
            }
        )
        paths = ", ".join(str(p) for p in result.paths)
        print(f"{name:<24} {paths}  {result.seconds:5.1f}s{_format_gap(result)}", flush=True)
        for note in result.notes:
            print(f"{'':<24}   note: {note}", flush=True)
    print(
        f"{len(names) - failures}/{len(names)} figures in "
        f"{time.perf_counter() - start:.1f}s -> {out_dir}/"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1, default=_jsonable))
    return 1 if failures else 0


def _jsonable(value: object) -> object:
    """NumPy scalars and arrays as plain numbers and lists."""
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else str(value)


if __name__ == "__main__":
    sys.exit(main())
