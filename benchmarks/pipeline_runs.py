"""Seconds per epoch and peak RSS of whole ``kedro run --pipelines=<p>`` runs, on any data.

Each pipeline (default: ``baseline`` and ``memory_efficient``) runs as a user runs it, in a fresh
``kedro run`` from a scratch copy of the project, once per repeat and Keras backend, interleaved
(the order rotates each repeat, so drifting load hits every run alike). Per run it reads the
run's own training report (``<model>_training_history.json``: each epoch's seconds, the
validation-selected epoch; for the sweep, how many runs it trained) and measures the process's
wall time and peak RSS (``wait4``: the largest of the process and its workers). It
prints, per pipeline and backend, the median [min-max] over repeats of: the first epoch (tracing
or XLA compilation included), the median later epoch, the whole run and its peak RSS. No
assertions: timings depend on the machine; quote the load average printed with them.

    python benchmarks/pipeline_runs.py --params "data.source=ciao,data.path=/abs/ciao-rating.mat" \\
        [--pipelines baseline memory_efficient] [--backend tensorflow jax] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_backend_argument, check_backends  # noqa: E402
from training_speed import child_env, order_for, project_copy, run_measured, spread  # noqa: E402


def training_report(project: Path, model: str) -> dict[str, Any] | None:
    """The run's training history of ``model`` (the only version in the scratch project); None
    for a pipeline that trains no single model (the sweep)."""
    versions = sorted(
        (project / "data/07_model_output" / f"{model}_training_history.json").glob("*")
    )
    if not versions:
        return None
    if len(versions) != 1:
        raise RuntimeError(f"expected one {model} training history, found {len(versions)}")
    return json.loads((versions[0] / f"{model}_training_history.json").read_text())


def sweep_figures(project: Path) -> dict[str, Any]:
    """How many (point, seed) runs a sweep trained, from its ``sweep_runs.csv``."""
    versions = sorted((project / "data/07_model_output/sweep_runs.csv").glob("*"))
    if not versions:
        return {}
    lines = (versions[-1] / "sweep_runs.csv").read_text().splitlines()
    return {"sweep_runs": len(lines) - 1}


def epoch_figures(report: dict[str, Any] | None) -> dict[str, Any]:
    """First epoch, median later epoch and the count, from a training report's epoch seconds."""
    if report is None:
        return {"epochs_run": None, "first_epoch_s": None, "later_epoch_median_s": None}
    seconds = report["epoch_seconds"]
    later = seconds[1:]
    return {
        "epochs_run": len(seconds),
        "best_epoch": report.get("best_epoch"),
        "first_epoch_s": seconds[0],
        "later_epoch_median_s": round(statistics.median(later), 3) if later else None,
        "val_rmse": report.get("val_rmse"),
    }


def eval_rmse(project: Path, model: str) -> float | None:
    """The run's eval RMSE of ``model`` (its metrics report), for the accuracy beside the times."""
    versions = sorted((project / "data/08_reporting" / f"{model}_metrics.json").glob("*"))
    if not versions:
        return None
    metrics = json.loads((versions[0] / f"{model}_metrics.json").read_text())
    return metrics.get("eval_rmse", metrics.get("rmse"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", required=True, help="kedro --params, e.g. data.source=ciao,…")
    parser.add_argument("--pipelines", nargs="+", default=["baseline", "memory_efficient"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--env", default=None, help="kedro --env")
    add_backend_argument(parser)
    parser.add_argument(
        "--jax-cache",
        choices=("user", "cold"),
        default="user",
        help="JAX's compilation cache: the user's folder (warm after a first run), or an empty "
        "folder for every run (each run compiles everything: a first run on a fresh machine)",
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    check_backends(parser, args.backends)
    load_start = [round(x, 2) for x in os.getloadavg()]
    kedro = Path(sys.executable).with_name("kedro")
    jobs = tuple((p, b) for p in args.pipelines for b in args.backends)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline_runs_") as scratch:
        project = project_copy(Path(scratch) / "project")
        for repeat in range(args.repeats):
            for pipeline, backend in order_for(repeat, jobs):
                command = [str(kedro), "run", f"--pipelines={pipeline}", "--params", args.params]
                if args.env:
                    command.append(f"--env={args.env}")
                log = Path(scratch) / f"{pipeline}_{backend}_{repeat}.log"
                env = child_env((None, None), backend)
                if args.jax_cache == "cold":
                    env["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(dir=scratch)
                result = run_measured(command, env, log, project)
                if result["returncode"] != 0:
                    raise RuntimeError(
                        f"{pipeline} on {backend} failed:\n{log.read_text()[-3000:]}"
                    )
                run = {
                    "pipeline": pipeline,
                    "backend": backend,
                    "repeat": repeat,
                    "seconds": result["seconds"],
                    "peak_rss_mib": result["peak_rss_mib"],
                    **epoch_figures(training_report(project, pipeline)),
                    **sweep_figures(project),
                    "eval_rmse": eval_rmse(project, pipeline),
                }
                runs.append(run)
                training = (
                    f"epochs {run['epochs_run']} (first {run['first_epoch_s']:.2f} s, later "
                    f"{run['later_epoch_median_s']} s), eval RMSE {run['eval_rmse']}"
                    if run["epochs_run"]
                    else f"{run.get('sweep_runs')} sweep runs"
                )
                print(
                    f"  repeat {repeat + 1}/{args.repeats} {pipeline:<17} {backend:<10} "
                    f"{run['seconds']:.1f} s, peak RSS {run['peak_rss_mib']:.0f} MiB "
                    f"(largest process), {training}",
                    flush=True,
                )
                shutil.rmtree(project / "data", ignore_errors=True)
                (project / "data").mkdir()
    summary = {}
    print(f"\nMedian [min-max] of {args.repeats} interleaved runs; --params {args.params}")
    for pipeline, backend in jobs:
        mine = [r for r in runs if r["pipeline"] == pipeline and r["backend"] == backend]
        figures = {
            key: spread(values)
            for key in ("first_epoch_s", "later_epoch_median_s", "seconds", "peak_rss_mib")
            if (values := [r[key] for r in mine if r.get(key) is not None])
        }
        summary[f"{pipeline}/{backend}"] = figures
        text = ", ".join(
            f"{key} {v['median']} [{v['min']}-{v['max']}]" for key, v in figures.items()
        )
        print(f"  {pipeline:<17} {backend:<10} {text}")
    load_end = [round(x, 2) for x in os.getloadavg()]
    print(f"Load average {load_start} at start, {load_end} at end ({os.cpu_count()} CPUs).")
    result = {
        "params": args.params,
        "jax_cache": args.jax_cache,
        "runs": runs,
        "summary": summary,
        "load": [load_start, load_end],
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
