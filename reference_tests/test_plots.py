"""The gallery (``python -m plots``): every figure draws, and shows minireg agreeing with torch.

Each figure is drawn in ``--quick`` mode into a temporary folder; the test checks that a
non-empty PNG was written and that the worst ``|minireg - torch|`` the figure reports is
below the figure's own tolerance (stated and justified in each figure module: float64
runs, so 1e-9 to 1e-12, except the fidelity dashboard, whose float32 cells are held to
``plots.fidelity.TOLERANCES``).  The gallery computes torch's side on the CPU only -- its
numbers are the ones the README shows -- so these tests do not take the ``device``
fixture; the kernels' CPU/CUDA comparisons are the other reference tests.

The command line is tested in subprocesses: an unknown figure name is rejected with a
message and a non-zero exit (no traceback), ``--list`` lists every figure, and without
torch the figures that can draw minireg alone still do while the dashboard says why it
is skipped.  The dashboard's error metric gets a few property tests of its own.

The lessons' figures (activations, symmetry, ...) are in the default run, so the gallery
test above holds each to its tolerance; beside it, ``--quick`` without ``--out`` must
leave the committed ``figures/`` alone, a figure with random draws (mixup) must be
deterministic, and the shared twin helper must report a gap when the twins differ.

The opt-in ``speed`` benchmark is smoke-tested in ``--quick`` mode (tiny sizes, 3 rounds):
it draws, its JSON has a ratio for every benchmark, and a bare ``python -m plots`` (the
gallery fixture) does not run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plots import FIGURES, GROUPS, OPT_IN, resolve_names

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LESSON_FIGURES = [
    "activations",
    "symmetry",
    "norm_batch_size",
    "batch_size",
    "label_smoothing_mixup",
    "bagging",
    "cross_validation",
    "noise_robustness",
]


def _draw(name: str, out_dir: Path):
    import importlib

    module_name, function_name, _ = FIGURES[name]
    return getattr(importlib.import_module(module_name), function_name)(out_dir, quick=True)


def _run_cli(
    *args: str, block_torch: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if block_torch:  # as if torch were not installed: `import torch` raises ImportError
        code = (
            "import sys, runpy; sys.modules['torch'] = None; sys.argv = ['plots', *sys.argv[1:]]; "
            "runpy.run_module('plots', run_name='__main__', alter_sys=True)"
        )
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "plots", *args]
    return subprocess.run(
        command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


# ---------------------------------------------------------------------------- every figure
@pytest.fixture(scope="module")
def quick_gallery(tmp_path_factory) -> dict[str, dict]:
    """Every figure drawn once, in --quick mode, by the command line (one process).

    A subprocess rather than in-process calls: the command pins NumPy's BLAS to one
    thread before NumPy loads, which the test process (NumPy already imported) cannot do;
    with BLAS worker threads the figures take ~8x the CPU on a busy 2-core machine.
    """
    out = tmp_path_factory.mktemp("gallery")
    done = _run_cli("--quick", "--out", str(out), "--json", str(out / "results.json"), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    import json

    return {record["name"]: record for record in json.loads((out / "results.json").read_text())}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_draws_and_agrees_with_torch(name, quick_gallery):
    record = quick_gallery[name]
    assert record["status"] == "drawn", record
    assert record["paths"], f"{name} wrote nothing"
    for path in record["paths"]:
        data = Path(path).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, f"{path} is not a real PNG"
    assert not record["notes"], f"{name}: {record['notes']}"
    assert record["gap"] is not None, f"{name} compared nothing with torch"
    assert record["gap"] <= record["tolerance"], (
        f"{name}: worst |minireg - torch| {record['gap']:.3g} > {record['tolerance']:.0e}"
    )


def test_fidelity_dashboard_every_kernel_importable_and_within_budget(quick_gallery):
    from plots import fidelity

    rows = quick_gallery["fidelity"]["data"]["rows"]
    assert [row["label"] for row in rows] == [label for _, label, _ in fidelity.KERNELS]
    for row in rows:
        for dtype, bound in fidelity.TOLERANCES.items():
            cell = row[dtype]
            assert isinstance(cell, list), f"{row['label']} {dtype}: {cell} ({row.get('note', '')})"
            assert cell[1] <= bound, (
                f"{row['label']} {dtype}: relative error {cell[1]:.3g} > {bound:.0e}"
            )


def test_fidelity_shows_missing_kernels_as_na(monkeypatch, tmp_path):
    from plots import _style, fidelity

    torch = pytest.importorskip("torch")
    real_require = _style.require

    def without_functional(dotted: str):
        if dotted.startswith("minireg.nn.functional"):
            raise _style.MissingDependency(f"{dotted} is not available (test)")
        return real_require(dotted)

    monkeypatch.setattr(fidelity, "require", without_functional)
    monkeypatch.setattr(
        fidelity, "KERNELS", [k for k in fidelity.KERNELS if k[0] in ("norms", "clipping")][::3]
    )
    rows = fidelity.run_battery(torch)
    states = {
        row["family"]: {row["float32"] if isinstance(row["float32"], str) else "ok"} for row in rows
    }
    assert states["norms"] == {"n/a"} and states["clipping"] == {"ok"}
    result = fidelity.draw(tmp_path)
    assert result.paths[0].stat().st_size > 10_000


# ---------------------------------------------------------------------------- command line
def test_cli_rejects_unknown_name_with_message():
    done = _run_cli("no_such_figure", "--out", "unused")
    assert done.returncode != 0
    assert "unknown figure name(s): no_such_figure" in done.stderr
    assert "--list" in done.stderr and "Traceback" not in done.stderr
    assert not (ROOT / "unused").exists()


def test_cli_list_names_every_figure_with_a_description():
    done = _run_cli("--list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name, (_, _, description) in FIGURES.items():
        assert any(line.split()[0] == name and description in line for line in lines), name
    for group in GROUPS:
        assert any(line.split()[0] == group for line in lines), group


def test_cli_draws_a_subset_and_reports_the_gap(tmp_path):
    done = _run_cli("lr_schedules", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lr_schedules.png").stat().st_size > 10_000
    line = next(line for line in done.stdout.splitlines() if line.startswith("lr_schedules"))
    assert "lr_schedules.png" in line and "worst |minireg-torch|" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_schedules.png"]


def test_cli_without_torch_draws_minireg_alone_and_skips_the_dashboard(tmp_path):
    done = _run_cli(
        "lr_schedules", "clipping", "fidelity", "--quick", "--out", str(tmp_path), block_torch=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torch is not installed" in done.stderr
    assert "fidelity" in done.stderr and "skipped" in done.stderr and "Traceback" not in done.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"lr_schedules.png", "clipping.png"}
    assert "worst |minireg-torch|" not in done.stdout  # nothing was compared


def test_a_failing_figure_does_not_stop_the_others(monkeypatch, tmp_path, capsys):
    import plots
    import plots.__main__ as cli

    figures = {
        "broken": ("plots._style", "no_such_function", "a figure that fails"),
        "lr_schedules": plots.FIGURES["lr_schedules"],
    }
    monkeypatch.setattr(cli, "FIGURES", figures)
    monkeypatch.setattr(cli, "resolve_names", lambda names: (list(figures), []))
    assert cli.main(["--quick", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "broken" in captured.err and "FAILED" in captured.err
    assert (tmp_path / "lr_schedules.png").exists()


def test_group_names_expand_in_drawing_order():
    names, unknown = resolve_names(["trajectories", "lr_schedules", "bogus"])
    assert names == [*GROUPS["trajectories"], "lr_schedules"] and unknown == ["bogus"]


def test_drawing_is_deterministic(tmp_path):
    first = _draw("lr_schedules", tmp_path / "a").paths[0].read_bytes()
    second = _draw("lr_schedules", tmp_path / "b").paths[0].read_bytes()
    assert first == second


def test_a_figure_with_random_draws_is_deterministic(tmp_path):
    # mixup's permutations and Beta draws come from a seeded generator, not the default one
    import minireg

    minireg.manual_seed(1)
    first = _draw("label_smoothing_mixup", tmp_path / "a")
    minireg.manual_seed(2)
    second = _draw("label_smoothing_mixup", tmp_path / "b")
    assert first.paths[0].read_bytes() == second.paths[0].read_bytes()
    assert first.data == second.data


# ---------------------------------------------------------------------------- the lessons' figures
def test_cli_list_shows_every_lesson_figure():
    done = _run_cli("--list")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    for name in LESSON_FIGURES:
        assert name in listed and name in FIGURES, name


def _git_status(path: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--", str(path)],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def test_quick_without_out_never_touches_the_committed_gallery():
    import re
    import shutil

    gallery = ROOT / "figures"
    before = {p.name: p.read_bytes() for p in gallery.glob("*.png")}
    status = _git_status(gallery)
    done = _run_cli("lr_schedules", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"scratch folder (\S+)/", done.stdout)
    assert match, done.stdout
    scratch = Path(match.group(1))
    try:
        assert scratch.resolve() != gallery.resolve()
        assert (scratch / "lr_schedules.png").stat().st_size > 10_000
        assert {p.name: p.read_bytes() for p in gallery.glob("*.png")} == before
        assert _git_status(gallery) == status
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_twins_report_a_gap_only_when_the_twins_differ():
    torch = pytest.importorskip("torch")
    from plots._models import Twins

    x = np.random.default_rng(0).standard_normal((16, 3))
    y = np.random.default_rng(1).integers(0, 2, 16)
    for lockstep in (False, True):
        pair = Twins.mlp(
            (3, 8, 2), "ReLU", torch, ("Adam", {"lr": 1e-2}), ("CrossEntropyLoss", {}),
            norm="LayerNorm", lockstep=lockstep,
        )  # fmt: skip
        for _ in range(5):
            pair.step(x, y)
        pair.outputs(x)
        pair.compare_weights()
        assert pair.gap is not None and pair.gap < 1e-12
        with torch.no_grad():  # a twin that is not a twin (one weight, so LayerNorm keeps it)
            next(pair.twin.parameters())[0, 0] += 1e-6
        pair.outputs(x)
        assert pair.gap > 1e-8, lockstep


# ---------------------------------------------------------------------------- opt-in figures
def test_default_run_draws_exactly_the_default_figures(quick_gallery):
    assert list(quick_gallery) == list(FIGURES)
    assert not set(OPT_IN) & set(quick_gallery) and "speed" in OPT_IN


def test_opt_in_figures_are_drawn_when_named_and_listed_as_opt_in():
    assert resolve_names(["speed"]) == (["speed"], [])
    assert resolve_names(["speed", "lr_schedules"])[0] == ["lr_schedules", "speed"]
    done = _run_cli("--list")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.split()[0] == "speed")
    assert "opt-in" in line and OPT_IN["speed"][2] in line


def test_speed_benchmark_quick_smoke(tmp_path):
    pytest.importorskip("torch")
    import json

    from plots import speed

    done = _run_cli("speed", "--quick", "--out", str(tmp_path), "--json", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "load average before" in done.stdout and "load average after" in done.stdout
    assert speed.HEADER in done.stdout and "threads: torch" in done.stdout
    (record,) = json.loads((tmp_path / "r.json").read_text())
    assert record["name"] == "speed" and record["status"] == "drawn", record
    png = Path(record["paths"][0]).read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    benches = record["data"]["benchmarks"]
    expected = len(speed.OPTIMIZERS) * (len(speed.QUICK.sizes) + 1) + 4  # + clip, 2 BN, dropout
    assert len(benches) == expected
    for bench in benches:
        assert set(bench["seconds"]) >= {"minireg", "torch"}, bench["name"]
        ratio = bench["ratios"]["minireg/torch"]
        assert np.isfinite(ratio) and ratio > 0, bench["name"]
        if bench["optimizer"] in ("SGD", "Adam", "AdamW", "Adagrad"):  # fused on the CPU
            assert bench["ratios"]["minireg/torch fused"] > 0, bench["name"]
    (clip,) = [b for b in benches if b["family"] == "clip_grad_norm_"]
    assert max(clip["norm_rel_error"].values()) < 1e-5
    env = record["data"]["environment"]
    assert env["torch_num_threads"] >= 1 and "OPENBLAS_CORETYPE" in env["variables"]
    assert env["load_before"] is not None and env["load_after"] is not None


def test_speed_rounds_alternate_the_order_of_the_sides():
    from plots.speed import measure

    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    medians, spreads, repeats = measure(calls, rounds=4, warmup=1, target=0.0)
    assert repeats == {"a": 1, "b": 1, "c": 1} and set(medians) == set(spreads) == set(calls)
    rounds = order[6:]  # after one warm-up and one calibration call each
    # each timed call right after an untimed lead-in call of the same side
    assert "".join(rounds) == "aabbcc" + "ccbbaa" + "aabbcc" + "ccbbaa"


# ------------------------------------------------------------------------ the dashboard's metric
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(
    values=st.lists(finite, min_size=1, max_size=20),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_ulp_error_counts_units_in_the_last_place(values, dtype):
    from plots.fidelity import ulp_error

    ref = np.array(values, dtype=dtype)
    assert ulp_error(ref.copy(), ref) == (0.0, 0.0)
    largest = np.max(np.abs(ref))
    bumped = ref.copy()
    index = int(np.argmax(np.abs(ref)))
    bumped[index] = np.nextafter(ref[index], dtype(np.inf))
    ulps, rel = ulp_error(bumped, ref)
    if largest > 0:
        assert ulps in (0.5, 1.0)  # half a unit when stepping down across a power of two
        assert 0 < rel <= 2 * np.finfo(dtype).eps
    assert ulp_error(np.where(np.arange(ref.size) == 0, np.nan, ref), ref)[0] == np.inf


@given(values=st.lists(finite, min_size=1, max_size=60), width=st.integers(1, 25))
def test_moving_average_is_the_trailing_mean(values, width):
    from plots._style import moving_average

    expected = [np.mean(values[max(0, i + 1 - width) : i + 1]) for i in range(len(values))]
    np.testing.assert_allclose(moving_average(values, width), expected, rtol=1e-9, atol=1e-6)
