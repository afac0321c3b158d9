"""The embedded demo: a tiny GPT-2 trained here on the offline fact corpus, traced with Forward-INF."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hf_attrib import AttributionResult
from hf_attrib.cli import app
from hf_attrib.data.fact_corpus import generate_fact_corpus
from hf_attrib.demo import DemoArguments, run_demo


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return run_demo(DemoArguments(output_dir=str(tmp_path_factory.mktemp("demo")), images=False, progress=False))


def test_forward_inf_ranks_a_true_proponent_first_for_most_answered_queries(report):
    assert report.answered >= 10  # enough answered queries for the rate to mean something
    # recompute the rate from the saved files, independently of the demo's own bookkeeping
    result = AttributionResult.load(report.run_dir / "forward_inf")
    corpus = generate_fact_corpus(queries=DemoArguments().queries, seed=DemoArguments().seed)
    proponents = corpus.proponents()
    hits = [result.candidate_ids[int(np.argmax(result.scores[q]))] in proponents[qid]
            for q, qid in enumerate(result.query_ids)]
    assert len(hits) == report.answered
    assert np.mean(hits) == pytest.approx(report.top1_rate)
    assert np.mean(hits) >= 0.8


def test_run_folder(report):
    folder = report.run_dir
    for name in ("abstracts.jsonl", "queries.jsonl", "scores.png", "summary.json", "model/model.safetensors",
                 "forward_inf/scores.safetensors", "forward_inf/result.json", "forward_inf/README.md",
                 "forward_inf/topk.parquet", "bm25/metrics.json", "report/index.html", "report/metrics.png"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["answered_correctly"] == report.answered
    assert (folder / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the run folder's metrics agree with the demo's own top-1 rate; the model fingerprint is the saved model's
    scored = json.loads((folder / "forward_inf" / "metrics.json").read_text())
    assert scored["metrics"]["top1_accuracy"] == pytest.approx(report.top1_rate)
    from hf_attrib.adapters import CausalLMAdapter
    from hf_attrib.runs import RunInfo

    run = json.loads((folder / "forward_inf" / "run.json").read_text())
    saved = CausalLMAdapter.from_pretrained(str(folder / "model")).model
    assert run["model"]["fingerprint"] == RunInfo.for_model(saved).model_fingerprint


def test_proponents_follow_the_ftrace_rule():
    corpus = generate_fact_corpus(queries=20, seed=3)
    by_id = {a["id"]: a for a in corpus.abstracts}
    for query in corpus.queries:
        fact = f"{query['predicate_id']},{query['sub_uri']},{query['obj_uri']}"
        expected = {i for i, a in by_id.items() if fact in a["facts"].split(";")}
        assert corpus.proponents()[query["uuid"]] == expected and expected
        assert "<extra_id_0>" in query["inputs_pretokenized"]
        # paraphrase: the query's wording never occurs in an abstract
        prefix = query["inputs_pretokenized"].split(query["sub_label"])[0].strip()
        if prefix:
            assert not any(prefix in a["inputs_pretokenized"] for a in corpus.abstracts)


def test_cli_demo_end_to_end(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--output-dir", str(tmp_path), "--epochs", "30", "--queries", "20",
                                      "--show", "2", "--no-images", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "top-3 abstracts per query" in result.output
    assert "queries answered correctly" in result.output
    assert (tmp_path / "forward_inf" / "result.json").is_file()


def test_image_demo_writes_results_and_grids_that_agree(tmp_path):
    from PIL import Image

    from hf_attrib.adapters import StableDiffusionAdapter
    from hf_attrib.demo_images import ImageDemoArguments, run_image_demo

    args = ImageDemoArguments(pretrain_images=40, vae_steps=20, pretrain_epochs=1, customize_epochs=10, candidates=12,
                              timesteps=4, top_k=5, progress=False)
    report = run_image_demo(tmp_path, args)
    assert report.candidates == 12 and set(report.ranks) == {"forward-inf", "nearest"}
    for name, rank in report.ranks.items():
        result = AttributionResult.load(tmp_path / "images" / name)
        assert result.query_ids == ["generated"] and len(result.candidate_ids) == 12
        exemplar = [c for c in result.candidate_ids if c.startswith("exemplar-")]
        assert len(exemplar) == 1
        # the reported rank is the exemplar's place in the saved scores (ties counted against it)
        score = result.scores[0][result.candidate_ids.index(exemplar[0])]
        assert rank == 1 + int(np.sum(result.scores[0] > score))
        scored = json.loads((tmp_path / "images" / name / "metrics.json").read_text())
        assert scored["first_relevant_rank"] == {"generated": rank} and scored["relevant"]["generated"] == exemplar
        with Image.open(report.grids[name]) as grid:
            assert grid.format == "PNG" and grid.width > grid.height  # the query, then the top 5 in a row
    assert StableDiffusionAdapter.from_pretrained(str(tmp_path / "pipeline")).pipeline.unet is not None
    assert (tmp_path / "generated" / "dataset_info.json").is_file()
    with pytest.raises(ValueError, match="candidates must be"):
        ImageDemoArguments(pretrain_images=10, candidates=20)
