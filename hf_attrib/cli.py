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
    images: bool = typer.Option(True, help="Also trace a customized tiny Stable Diffusion's image (~2 min)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Train a tiny GPT-2 on an offline fact corpus and trace its answers with Forward-INF."""
    from hf_attrib.demo import DemoArguments, run_demo

    report = run_demo(DemoArguments(output_dir=output_dir, seed=seed, epochs=epochs, queries=queries,
                                    show=show, images=images, progress=progress))
    typer.echo("Forward-INF on a tiny GPT-2 trained here: top-3 abstracts per query")
    typer.echo(report.table)
    typer.echo(
        f"\nqueries answered correctly: {report.answered}/{report.asked}; a true proponent ranked first for "
        f"{report.top1_rate:.0%} of them ({sum(1 for _ in report.result.query_ids)} traced over "
        f"{len(report.result.candidate_ids)} abstracts); BM25 (word overlap, beside it): "
        f"{report.bm25_top1_rate:.0%}"
    )
    if report.images:
        ranks = ", ".join(f"{name} ranks it {rank}" for name, rank in report.images.ranks.items())
        typer.echo(f"\nimages: a tiny Stable Diffusion pretrained here on handwritten digits, customized on one "
                   f"exemplar digit; its generated image traced among {report.images.candidates} images: {ranks}")
        typer.echo("grids: " + ", ".join(str(path) for path in report.images.grids.values()))
    typer.echo(f"run folder: {report.run_dir} (forward_inf/, bm25/, images/, model/, summary.json)")
    typer.echo(f"report: {report.run_dir / 'report' / 'index.html'}")
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


def _load_pipeline(name_or_path: str):
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(name_or_path, use_safetensors=True, safety_checker=None,
                                                       requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@app.command()
def finetune(
    pipeline: Annotated[str, typer.Argument(help="A Stable Diffusion pipeline folder or Hub id.")],
    images: Annotated[list[str], typer.Argument(help="Exemplar image files.")],
    prompt: str = typer.Option(..., help="Caption of the exemplars, e.g. 'a photo of <v1> dog'."),
    output_dir: str = typer.Option(..., help="Folder the customized pipeline is saved to."),
    train: str = typer.Option("cross-attn-kv", help="UNet parameters: cross-attn-kv, attn, unet, lora or none."),
    train_embedding: bool = typer.Option(False, help="Also train the new <token>'s embedding (textual inversion)."),
    epochs: int = typer.Option(50, help="Passes over the (repeated) exemplars."),
    learning_rate: float = typer.Option(1e-3, help="AdamW learning rate."),
    seed: int = typer.Option(0, help="Seed of training."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Customize a pipeline on exemplar images (a new <token> in the prompt is added) and save it."""
    from hf_attrib.customize import customize

    try:
        pipe = _load_pipeline(pipeline)
        history = customize(pipe, images, prompt, train=train, train_embedding=train_embedding, epochs=epochs,
                            learning_rate=learning_rate, seed=seed, progress=progress)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    pipe.save_pretrained(output_dir, safe_serialization=True)
    typer.echo(f"loss {history[0]:.4f} -> {history[-1]:.4f}; saved {output_dir}")


@app.command()
def generate(
    pipeline: Annotated[str, typer.Argument(help="A Stable Diffusion pipeline folder or Hub id.")],
    prompts: Annotated[list[str], typer.Argument(help="Prompts.")],
    output_dir: str = typer.Option(..., help="Folder of the image dataset (Dataset.save_to_disk)."),
    seeds: str = typer.Option("0", help="Comma-separated seeds; one image per prompt and seed."),
    steps: int = typer.Option(25, help="Denoising steps."),
    guidance_scale: float = typer.Option(7.5, help="Classifier-free guidance scale."),
) -> None:
    """Generate images and save them as a dataset with prompt, seed and steps."""
    from hf_attrib.customize import generate as generate_images

    dataset = generate_images(_load_pipeline(pipeline), prompts, seeds=[int(s) for s in seeds.split(",")],
                              steps=steps, guidance_scale=guidance_scale)
    dataset.save_to_disk(output_dir)
    typer.echo(f"{len(dataset)} images saved to {output_dir}")


@app.command("trace-images")
def trace_images(
    recipe: Annotated[str, typer.Argument(help="A YAML recipe (see hf_attrib/image_tracing.py).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides of the recipe.")] = None,
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Trace generated images to candidate training images; writes results and a PNG grid per query."""
    from hf_attrib.fact_tracing import load_recipe
    from hf_attrib.image_tracing import run_image_tracing

    try:
        outcome = run_image_tracing(load_recipe(recipe, overrides), progress=progress)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for row in outcome["rows"]:
        extra = f" | MRR {row['mrr']:.3f} | top-1 acc {row['top1_accuracy']:.3f}" if "mrr" in row else ""
        typer.echo(f"{row['method']:<16} | top-1 per query {row['top1']}{extra} | {row['queries_per_min']:.1f} q/min")
    typer.echo(f"run folder: {outcome['run_dir']} (grids/ holds one PNG per method and query)")


@app.command()
def attribute(
    model: Annotated[str, typer.Argument(help="A model folder or Hub id.")],
    queries: Annotated[str, typer.Argument(help="Queries: a data file or a save_to_disk folder.")],
    candidates: Annotated[str, typer.Argument(help="Candidates: a folder of data files (one shard each), a file, "
                                                   "or a save_to_disk folder.")],
    options: Annotated[list[str] | None, typer.Argument(help="Forward-INF options as key=value.")] = None,
    output_dir: str = typer.Option(..., help="Run folder; rerunning the same command resumes it."),
    family: str = typer.Option("causal", help="causal, masked or diffusion."),
    revision: str = typer.Option(None, help="Model revision on the Hub."),
    shard_size: int = typer.Option(10_000, help="Rows per shard of a save_to_disk folder."),
    cpu: bool = typer.Option(False, help="Run on CPU even where a GPU is available."),
    top_k: int = typer.Option(5, help="Candidates printed per query."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Forward-INF over a large candidate set, shard by shard, resumable; under `accelerate launch` the
    processes split the shards."""
    from hf_attrib.scale import run_attribute

    try:
        result, accelerator = run_attribute(model, queries, candidates, output_dir, family=family, revision=revision,
                                            shard_size=shard_size, options=options, cpu=cpu, progress=progress)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if accelerator.is_main_process:
        for query_id, ranked in zip(result.query_ids, result.topk(top_k), strict=True):
            typer.echo(f"{query_id}: " + ", ".join(f"{c} ({s:.4g})" for c, s in ranked))
        typer.echo(f"{len(result.query_ids)} queries x {len(result.candidate_ids)} candidates on "
                   f"{accelerator.num_processes} process(es); result: {output_dir}/result")


@app.command()
def report(
    run_dir: Annotated[str, typer.Argument(help="A run folder (one result, or several in sub-folders).")],
    top_k: int = typer.Option(8, help="Candidates per image grid."),
    text_top: int = typer.Option(3, help="Candidates per query in a text ranking."),
    max_queries: int = typer.Option(6, help="Queries pictured per result."),
) -> None:
    """Pictures of every result in RUN_DIR and an index.html that shows them offline (RUN_DIR/report/)."""
    from hf_attrib.run_report import build_report

    try:
        manifest = build_report(run_dir, top_k=top_k, text_top=text_top, max_queries=max_queries)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(manifest.pictures)} pictures; open {manifest.index}")


@app.command()
def push(
    run_dir: Annotated[str, typer.Argument(help="A run folder.")],
    repo_id: Annotated[str, typer.Argument(help="The Hub dataset repo, e.g. user/my-attributions.")],
    private: bool = typer.Option(False, help="Create the repo private."),
) -> None:
    """Upload RUN_DIR as a Hub dataset repo (token: HF_TOKEN or `hf auth login`; never printed or saved)."""
    from hf_attrib.hub import push_run

    try:
        url = push_run(run_dir, repo_id, private=private)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"pushed {run_dir} to {url}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
