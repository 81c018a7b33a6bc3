"""How optimistic is a figure selected on the split that grades it?

For each model and seed, trains a fixed number of epochs through the project's fit-and-score path
(no early stopping) while a probe scores the eval split after every epoch; the probe only
observes, it selects nothing. It then compares, per run, the eval RMSE at the epoch the
validation split would pick (what the project now reports) with the eval RMSE at the epoch the
eval split itself would pick (what selecting on eval reported). The difference is the optimism of
eval-selected figures. Prints a markdown table of means ± sample std over seeds.

    PYTHONPATH=src python benchmarks/selection_optimism.py --archive ../shared/data/ml-100k.zip \\
        --no-verify-checksum                         # real ml-100k
    PYTHONPATH=src python benchmarks/selection_optimism.py --dataset ml-1m   # synthetic default
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_data_arguments,
    data_parameters,
    encoded_splits,
    fit_and_score_model,
    load_parameters,
    prepare_data,
)


def eval_probe(eval_split: Any) -> Any:
    """A Keras callback that scores the eval split after each epoch, for the record only."""
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.modeling.training import score_split  # noqa: PLC0415

    class EvalProbe(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.eval_rmse: list[float] = []

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.eval_rmse.append(score_split(self.model, eval_split, 65_536)["rmse"])

    return EvalProbe()


def selection_gap(val_rmse: list[float], eval_rmse: list[float]) -> dict[str, Any]:
    """Eval RMSE at the validation-selected epoch and at the eval-selected epoch (1-based)."""
    by_validation = min(range(len(val_rmse)), key=val_rmse.__getitem__)
    by_eval = min(range(len(eval_rmse)), key=eval_rmse.__getitem__)
    return {
        "validation_epoch": by_validation + 1,
        "eval_epoch": by_eval + 1,
        "eval_rmse_validation_selected": eval_rmse[by_validation],
        "eval_rmse_eval_selected": eval_rmse[by_eval],
        "optimism": eval_rmse[by_validation] - eval_rmse[by_eval],
    }


def _mean_std(values: list[float], digits: int = 4) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def render(rows: list[dict[str, Any]], description: str, seeds: list[int], epochs: int) -> str:
    """A markdown table, one line per model: means ± sample std over seeds."""
    lines = [
        f"Data: {description}; seeds {seeds}; {epochs} epochs, eval scored after each (observed, "
        "never selected on).",
        "",
        "| model | epoch by validation | epoch by eval | eval RMSE, validation-selected "
        "| eval RMSE, eval-selected | optimism of eval selection |",
        "|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(row["model"] for row in rows):
        runs = [row for row in rows if row["model"] == model]
        lines.append(
            f"| {model} | {_mean_std([r['validation_epoch'] for r in runs], 1)} "
            f"| {_mean_std([r['eval_epoch'] for r in runs], 1)} "
            f"| {_mean_std([r['eval_rmse_validation_selected'] for r in runs])} "
            f"| {_mean_std([r['eval_rmse_eval_selected'] for r in runs])} "
            f"| {_mean_std([r['optimism'] for r in runs])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--models", nargs="+", default=["baseline", "memory_efficient"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--json-out", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)

    params = load_parameters(args.env)
    data = prepare_data(data_parameters(params, args), params)
    data["splits"] = encoded_splits(data)
    training = {
        **params["training"],
        "epochs": args.epochs,
        "verbose": 0,
        "early_stopping": {"enabled": False},
    }
    rows = []
    for model in args.models:
        for seed in args.seeds:
            probe = eval_probe(data["splits"]["eval"])
            record = fit_and_score_model(
                params[model]["model"],
                training,
                data,
                params["evaluation"],
                seed=seed,
                callbacks=[probe],
            )
            row = {"model": model, "seed": seed} | selection_gap(
                record["history"]["val_rmse"], probe.eval_rmse
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = render(rows, data["provenance"].get("description", ""), args.seeds, args.epochs)
    print(table)
    if args.json_out:
        args.json_out.write_text(json.dumps({"runs": rows, "table": table}, indent=2))


if __name__ == "__main__":
    main()
