"""`kedro run --pipelines=sweep`: data processing, then the compression sweep (not in `__default__`)."""

from kedro.pipeline import Node, Pipeline

from memory_efficient_embeddings.modeling.grid import plan_sweep
from memory_efficient_embeddings.pipelines.data_processing.pipeline import (
    create_pipeline as create_data_processing_pipeline,
)

from .chart import plot_compression_frontier
from .peers import score_sweep_peers
from .placement import place_sweep_budgets
from .plan import assign_sweep_blocks
from .runs import run_sweep
from .summary import render_sweep_table, summarize_sweep, sweep_summary_record


def create_pipeline(**kwargs) -> Pipeline:
    """Plan the grid, place it at its budgets, train every point over seeds, score the peers on
    the same split, then summarise, tabulate and chart it."""
    sweep_nodes = Pipeline(
        [
            Node(
                plan_sweep,
                inputs=["params:sweep", "params:baseline.model"],
                outputs="sweep_grid",
                name="plan_sweep",
                tags="data",
            ),
            Node(
                place_sweep_budgets,
                inputs=["sweep_grid", "user_vocabulary", "movie_vocabulary"],
                outputs="sweep_plan",
                name="place_sweep_budgets",
            ),
            Node(
                assign_sweep_blocks,
                inputs=["sweep_plan", "user_vocabulary", "movie_vocabulary", "params:evaluation"],
                outputs="sweep_embedding_plans",
                name="assign_sweep_blocks",
            ),
            Node(
                run_sweep,
                inputs=[
                    "sweep_plan",
                    "sweep_embedding_plans",
                    "train_ratings",
                    "validation_ratings",
                    "eval_ratings",
                    "user_vocabulary",
                    "movie_vocabulary",
                    "params:training",
                    "params:sweep",
                ],
                outputs="sweep_runs",
                name="run_sweep",
                tags=["training", "evaluation"],
            ),
            Node(
                score_sweep_peers,
                inputs=["train_ratings", "validation_ratings", "eval_ratings", "params:sweep"],
                outputs="sweep_peers",
                name="score_sweep_peers",
                tags=["training", "evaluation"],
            ),
            Node(
                summarize_sweep,
                inputs=[
                    "sweep_runs",
                    "params:sweep",
                    "sweep_plan",
                    "sweep_peers",
                    "user_vocabulary",
                    "movie_vocabulary",
                ],
                outputs="sweep_summary",
                name="summarize_sweep",
                tags="reporting",
            ),
            Node(
                sweep_summary_record,
                inputs=["sweep_summary", "params:sweep"],
                outputs="sweep_summary_json",
                name="sweep_summary_record",
                tags="reporting",
            ),
            Node(
                render_sweep_table,
                inputs=["sweep_summary", "data_provenance", "params:sweep"],
                outputs="sweep_table",
                name="render_sweep_table",
                tags="reporting",
            ),
            Node(
                plot_compression_frontier,
                inputs=["sweep_summary", "data_provenance", "params:sweep"],
                outputs="compression_frontier",
                name="plot_compression_frontier",
                tags="reporting",
            ),
        ],
        tags="sweep",
    )
    return create_data_processing_pipeline() + sweep_nodes
