"""The embedded default run: trace facts a tiny GPT-2, trained here, states back to the abstracts that
taught them.

1. generate an offline fact corpus in FTRACE-TREX's schema (abstracts, paraphrased cloze queries);
2. train a byte-level BPE tokenizer and a tiny GPT-2 on the abstracts; save both and load them back
   with `from_pretrained` (the same code path as a Hub model);
3. keep the queries the model answers correctly and trace each with Forward-INF over all abstracts;
4. print the top-3 abstracts per query and whether each states the query's fact; write a run folder
   (``forward_inf/`` and the BM25 baseline's ``bm25/``, see `hf_attrib.runs`);
5. then the image part (`hf_attrib.demo_images`): a tiny Stable Diffusion pretrained here on handwritten
   digits, customized on one exemplar; its generated image traced back among 100 candidates, as a PNG grid;
6. `hf-attrib report` on the run folder: ``report/index.html`` and its pictures.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hf_attrib.adapters import CausalLMAdapter
from hf_attrib.data.fact_corpus import generate_fact_corpus
from hf_attrib.data.ftrace import causal_query, causal_text, fill_blank
from hf_attrib.demo_images import ImageDemoArguments, ImageDemoReport, run_image_demo
from hf_attrib.engine import finetune
from hf_attrib.engine.arguments import Arguments
from hf_attrib.engine.scoring import answered_correctly
from hf_attrib.methods import BM25, ForwardINF
from hf_attrib.report import plot_proponent_scores
from hf_attrib.results import AttributionResult
from hf_attrib.run_report import build_report
from hf_attrib.runs import RunInfo, examples_by_id


@dataclass
class DemoArguments(Arguments):
    """Options of the demo; the defaults are the embedded run of ``make demo``."""

    output_dir: str = field(default="", metadata={"help": "Run folder (default: runs/demo-<time>)."})
    seed: int = field(default=0, metadata={"help": "Seed of the corpus, the model and training."})
    queries: int = field(default=80, metadata={"help": "Queries generated (the model answers some)."})
    epochs: int = field(default=150, metadata={"help": "Training epochs of the tiny GPT-2."})
    train_learning_rate: float = field(default=3e-3, metadata={"help": "AdamW learning rate of training."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the tiny GPT-2."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Forward-INF ascent learning rate."})
    steps: int = field(default=3, metadata={"help": "Forward-INF ascent steps."})
    optimizer: str = field(default="adam", metadata={"help": "Forward-INF ascent optimizer."})
    show: int = field(default=8, metadata={"help": "Queries printed with their top-3."})
    images: bool = field(default=True, metadata={"help": "Also run the image trace (tiny Stable Diffusion)."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})


@dataclass
class DemoReport:
    run_dir: Path
    result: AttributionResult
    proponents: dict[str, set[str]]
    answered: int
    asked: int
    top1_rate: float
    seconds: float
    table: str
    bm25_top1_rate: float = float("nan")
    images: ImageDemoReport | None = None


def run_demo(args: DemoArguments | None = None) -> DemoReport:
    args = args or DemoArguments()
    start = time.perf_counter()
    run_dir = Path(args.output_dir or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    corpus = generate_fact_corpus(queries=args.queries, seed=args.seed)
    _write_jsonl(run_dir / "abstracts.jsonl", corpus.abstracts)
    _write_jsonl(run_dir / "queries.jsonl", corpus.queries)
    candidates = [causal_text(row) for row in corpus.abstracts]
    queries = [causal_query(row) for row in corpus.queries]

    from hf_attrib.tiny.models import tiny_gpt2
    from hf_attrib.tiny.tokenizers import gpt2_tokenizer

    tokenizer = gpt2_tokenizer([fill_blank(r) for r in corpus.abstracts + corpus.queries], vocab_size=1000)
    model = tiny_gpt2(tokenizer, seed=args.seed, n_embd=args.hidden_size)
    finetune(CausalLMAdapter(model, tokenizer), candidates, epochs=args.epochs,
             learning_rate=args.train_learning_rate, batch_size=16, warmup_steps=20, seed=args.seed,
             progress=args.progress)
    with _transformers_progress(args.progress):
        model.save_pretrained(run_dir / "model")
        tokenizer.save_pretrained(run_dir / "model")
        adapter = CausalLMAdapter.from_pretrained(str(run_dir / "model"))

    correct = answered_correctly(adapter, queries)
    traced = [q for q, ok in zip(queries, correct, strict=True) if ok]
    if not traced:
        raise RuntimeError("the tiny model answers no query correctly; train longer (--epochs)")
    info = RunInfo.for_model(adapter.model, "tiny GPT-2 trained here (model/)")
    info.add_dataset("candidates", candidates, source="offline fact corpus (abstracts.jsonl)")
    info.add_dataset("queries", traced, source="offline fact corpus (queries.jsonl)")
    proponents = corpus.proponents()
    examples = examples_by_id(traced, candidates)
    method = ForwardINF(adapter, learning_rate=args.learning_rate, steps=args.steps, optimizer=args.optimizer,
                        progress=args.progress)
    with info.stage("forward-inf"):
        result = method.attribute(traced, candidates)
    result.config["demo"] = args.to_dict()
    result.save(run_dir / "forward_inf", info=info, relevant=proponents, examples=examples)
    lexical = RunInfo(model_id="(none: BM25 reads text only)", datasets=info.datasets)
    with lexical.stage("bm25"):  # the lexical baseline beside it
        bm25 = BM25().attribute(traced, candidates)
    bm25.save(run_dir / "bm25", info=lexical, relevant=proponents, examples=examples)

    top1 = top1_rate(result, proponents)
    plot_proponent_scores(result, proponents, run_dir / "scores.png")
    table = format_table(result, proponents, {q["id"]: q for q in queries}, args.show)
    summary = {"queries": len(queries), "answered_correctly": len(traced), "top1_proponent_rate": top1,
               "bm25_top1_proponent_rate": top1_rate(bm25, proponents),
               "text_seconds": round(time.perf_counter() - start, 1), "arguments": args.to_dict()}
    images = None
    if args.images:
        images = run_image_demo(run_dir, ImageDemoArguments(seed=args.seed, progress=args.progress))
        summary["images"] = {"exemplar_rank": images.ranks, "candidates": images.candidates,
                             "grids": {k: str(v.relative_to(run_dir)) for k, v in images.grids.items()},
                             "seconds": images.seconds}
    build_report(run_dir)
    seconds = time.perf_counter() - start
    summary["seconds"] = round(seconds, 1)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return DemoReport(run_dir, result, proponents, len(traced), len(queries), top1, seconds, table,
                      top1_rate(bm25, proponents), images)


def top1_rate(result: AttributionResult, proponents: dict[str, set[str]]) -> float:
    return float(np.mean([ranked[0][0] in proponents[q] for q, ranked in zip(result.query_ids, result.topk(1),
                                                                              strict=True)]))


def format_table(result: AttributionResult, proponents: dict[str, set[str]], queries: dict[str, dict],
                 show: int) -> str:
    lines = []
    for row, query_id in enumerate(result.query_ids[:show]):
        query = queries[query_id]
        lines.append(f"\n{query_id}: {query['prompt']} [{query['target']}]")
        for rank, (candidate, score) in enumerate(result.topk(3)[row], start=1):
            mark = "proponent" if candidate in proponents[query_id] else "-"
            lines.append(f"  {rank}. {score:8.4f}  {mark:<9}  {candidate}")
    return "\n".join(lines)


@contextmanager
def _transformers_progress(enabled: bool):
    """transformers' own save/load progress bars follow the demo's `progress` option."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    if not enabled:
        logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
