"""The run folder: every file of the layout, exact round trips, a card the Hub tooling parses, metrics checked
against hand-computed values, provenance (versions, fingerprints, stage times)."""

import json

import numpy as np
import pytest
from PIL import Image

from hf_attrib import AttributionResult
from hf_attrib.runs import RunInfo, package_versions, rows_fingerprint

RELEVANT = {"q1": {"c"}, "q2": {"a", "c"}}
EXAMPLES = {"q1": {"id": "q1", "prompt": "The capital of France is", "target": "Paris"},
            "q2": {"id": "q2", "text": "second query"},
            **{c: {"id": c, "text": f"abstract {c}"} for c in "abcd"}}


@pytest.fixture
def result():
    scores = np.array([[0.1, 0.5, 0.5, -1.0], [2.0, 0.0, 1.0, 3.0]])
    return AttributionResult(scores, ["q1", "q2"], ["a", "b", "c", "d"], method="forward-inf",
                             config={"arguments": {"learning_rate": 0.01}}, extras={"base_losses": np.arange(4.0)})


@pytest.fixture
def info():
    info = RunInfo(model_id="user/tiny-gpt2", model_revision="abc123", model_fingerprint="f" * 64)
    info.add_dataset("candidates", [EXAMPLES[c] for c in "abcd"], source="user/abstracts")
    with info.stage("attribute"):
        pass
    return info


def test_run_folder_has_every_file_and_round_trips_exactly(tmp_path, result, info):
    folder = result.save(tmp_path / "run", info=info, relevant=RELEVANT, examples=EXAMPLES, top_k=3)
    names = {p.name for p in folder.iterdir()}
    assert names == {"scores.safetensors", "result.json", "topk.parquet", "run.json", "metrics.json",
                     "examples.parquet", "plots", "README.md"}
    assert {p.name for p in (folder / "plots").iterdir()} == {"score-histogram.png", "proponent-scores.png"}
    loaded = AttributionResult.load(folder)
    assert np.array_equal(loaded.scores, result.scores) and loaded.scores.dtype == np.float64
    assert (loaded.query_ids, loaded.candidate_ids, loaded.method, loaded.config) == (
        result.query_ids, result.candidate_ids, result.method, result.config)
    np.testing.assert_array_equal(loaded.extras["base_losses"], np.arange(4.0))


def test_topk_table_and_metrics_match_hand_computed_values(tmp_path, result, info):
    from datasets import Dataset

    folder = result.save(tmp_path / "run", info=info, relevant=RELEVANT, examples=EXAMPLES, top_k=3)
    table = Dataset.from_parquet(str(folder / "topk.parquet"))
    assert table.column_names == ["query_id", "candidate_id", "rank", "score", "relevant"]
    assert [(r["query_id"], r["candidate_id"], r["rank"], r["score"], r["relevant"]) for r in table] == [
        ("q1", "b", 1, 0.5, False), ("q1", "c", 2, 0.5, True), ("q1", "a", 3, 0.1, False),
        ("q2", "d", 1, 3.0, False), ("q2", "a", 2, 2.0, True), ("q2", "c", 3, 1.0, True)]
    scored = json.loads((folder / "metrics.json").read_text())
    # q1: c at rank 2 -> RR 1/2, AP 1/2; q2: a at 2, c at 3 -> RR 1/2, AP (1/2 + 2/3) / 2
    assert scored["metrics"]["mrr"] == pytest.approx(0.5)
    assert scored["metrics"]["map"] == pytest.approx((0.5 + (0.5 + 2 / 3) / 2) / 2)
    assert scored["metrics"]["precision@1"] == 0.0 and scored["metrics"]["recall@10"] == 1.0
    assert scored["first_relevant_rank"] == {"q1": 2, "q2": 2}
    assert scored["relevant"] == {"q1": ["c"], "q2": ["a", "c"]}


def test_run_json_records_provenance(tmp_path, result, info):
    folder = result.save(tmp_path / "run", info=info)
    run = json.loads((folder / "run.json").read_text())
    assert run["method"] == "forward-inf" and run["options"] == result.config
    assert run["model"] == {"id": "user/tiny-gpt2", "revision": "abc123", "fingerprint": "f" * 64}
    assert run["datasets"]["candidates"] == {"id": "user/abstracts", "rows": 4,
                                             "fingerprint": rows_fingerprint([EXAMPLES[c] for c in "abcd"])}
    assert set(run["stages_seconds"]) == {"attribute"} and run["stages_seconds"]["attribute"] >= 0
    import torch
    import transformers

    assert run["versions"]["torch"] == torch.__version__ and run["versions"]["transformers"] == \
        transformers.__version__
    assert run["versions"] == package_versions()
    assert not (folder / "metrics.json").exists()  # no labels, no metrics


def test_fingerprints_follow_the_content():
    rows = [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]
    assert rows_fingerprint(rows) == rows_fingerprint([dict(r) for r in rows])
    assert rows_fingerprint(rows) != rows_fingerprint([rows[0], {"id": "b", "text": "z"}])
    image = Image.new("L", (4, 4), 0)
    other = Image.new("L", (4, 4), 0)
    other.putpixel((1, 1), 255)
    assert rows_fingerprint([{"id": "a", "image": image}]) != rows_fingerprint([{"id": "a", "image": other}])


def test_model_fingerprint_is_the_weights_sha256(gpt2):
    import torch

    first = RunInfo.for_model(gpt2, "m").model_fingerprint
    with torch.no_grad():
        next(gpt2.parameters())[0, 0] += 1
    assert len(first) == 64 and RunInfo.for_model(gpt2, "m").model_fingerprint != first


def test_card_parses_and_the_folder_loads_as_a_dataset(tmp_path, result, info):
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    folder = result.save(tmp_path / "run", info=info, relevant=RELEVANT, top_k=2)
    card = DatasetCard.load(folder / "README.md")
    assert card.data.method == "forward-inf" and card.data.base_model == "user/tiny-gpt2"
    assert {"hf-attrib", "forward-inf"} <= set(card.data.tags)
    assert "| mrr | 0.5000 |" in card.text and "AttributionResult.load" in card.text
    topk = load_dataset(str(folder), split="train")  # the card's config points at topk.parquet
    assert len(topk) == 4 and topk.column_names == ["query_id", "candidate_id", "rank", "score", "relevant"]


def test_examples_keep_queries_and_top_candidates_text_and_images(tmp_path, result):
    from datasets import Dataset

    folder = result.save(tmp_path / "text", examples=EXAMPLES, top_k=1)
    rows = {r["id"]: r for r in Dataset.from_parquet(str(folder / "examples.parquet"))}
    assert set(rows) == {"q1", "q2", "b", "d"}  # the queries and each one's top-1
    assert rows["q1"]["text"] == "The capital of France is [Paris]" and rows["q1"]["role"] == "query"
    assert rows["b"]["text"] == "abstract b" and rows["b"]["role"] == "candidate"
    pictures = {i: Image.new("RGB", (8, 8), (10 * n, 0, 0)) for n, i in enumerate(["q1", "q2", *"abcd"])}
    folder = result.save(tmp_path / "images", examples={i: {"image": im, "caption": i} for i, im in pictures.items()},
                         top_k=1)
    rows = {r["id"]: r for r in Dataset.from_parquet(str(folder / "examples.parquet"))}
    assert np.array_equal(np.asarray(rows["d"]["image"]), np.asarray(pictures["d"]))


def test_to_dataset_columns_and_types(result):
    dataset = result.to_dataset()
    assert {k: v.dtype for k, v in dataset.features.items()} == {
        "query_id": "string", "candidate_id": "string", "score": "float64", "rank": "int64"}
    assert len(dataset) == 8 and dataset[4] == {"query_id": "q2", "candidate_id": "d", "score": 3.0, "rank": 1}


def test_bad_options_and_interrupted_runs_leave_nothing(tmp_path, result, monkeypatch):
    with pytest.raises(ValueError, match="top_k"):
        result.save(tmp_path / "run", top_k=0)
    with pytest.raises(ValueError, match="layout"):
        result.save(tmp_path / "run", layout="zip")
    import hf_attrib.runs

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(hf_attrib.runs, "dataset_card", broken)
    with pytest.raises(RuntimeError):
        result.save(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []  # no half-written run folder, no staging folder


def test_scores_layout_for_shards(tmp_path, result):
    folder = result.save(tmp_path / "shard", layout="scores")
    assert {p.name for p in folder.iterdir()} == {"scores.safetensors", "result.json"}
