"""The `hf-attrib` command line."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Training-data attribution for HF models.")


@app.callback()
def _root() -> None:
    """hf-attrib: which training examples made a generative model produce this output."""


def _demo_default(name: str):
    from hf_attrib.demo import DemoArguments

    return DemoArguments.__dataclass_fields__[name].default


@app.command()
def demo(
    output_dir: str = typer.Option("", help="Run folder (default: runs/demo-<time>)."),
    seed: int = typer.Option(_demo_default("seed"), help="Seed of the corpus, the model and training."),
    epochs: int = typer.Option(_demo_default("epochs"), help="Training epochs of the tiny GPT-2."),
    queries: int = typer.Option(_demo_default("queries"), help="Queries generated (the model answers some)."),
    show: int = typer.Option(_demo_default("show"), help="Queries printed with their top-3."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Train a tiny GPT-2 on an offline fact corpus and trace its answers with Forward-INF."""
    from hf_attrib.demo import DemoArguments, run_demo

    report = run_demo(DemoArguments(output_dir=output_dir, seed=seed, epochs=epochs, queries=queries,
                                    show=show, progress=progress))
    typer.echo("Forward-INF on a tiny GPT-2 trained here: top-3 abstracts per query")
    typer.echo(report.table)
    typer.echo(
        f"\nqueries answered correctly: {report.answered}/{report.asked}; a true proponent ranked first for "
        f"{report.top1_rate:.0%} of them ({sum(1 for _ in report.result.query_ids)} traced over "
        f"{len(report.result.candidate_ids)} abstracts)"
    )
    typer.echo(f"run folder: {report.run_dir} (scores.png, forward_inf/, model/, summary.json)")
    typer.echo(f"wall time: {report.seconds:.0f} s")


@app.command("trace-facts")
def trace_facts(
    recipe: Annotated[str, typer.Argument(help="A YAML recipe, e.g. recipes/ftrace_tiny.yaml.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides of the recipe.")] = None,
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run several attribution methods on one model and candidate set; print MRR, P@1, R@10, queries/min."""
    from hf_attrib.fact_tracing import format_table, load_recipe, run_fact_tracing

    try:
        spec = load_recipe(recipe, overrides)
        outcome = run_fact_tracing(spec, progress=progress)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{outcome['queries']} queries, {outcome['candidates']} candidates (each query ranked in its own set)")
    typer.echo(format_table(outcome["rows"]))
    typer.echo(f"run folder: {outcome['run_dir']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
