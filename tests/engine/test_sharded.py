"""Sharded scoring: resume after SIGKILL, refusal to resume a different run, corrupt shards, 1 vs 2 processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter
from hf_attrib.data.shards import CandidateShards
from hf_attrib.engine.sharded import model_sha256

TEXTS = ["Varnok is a city in Belmora .", "Quell was born in Tesh .", "Tesh lies in the south of Belmora .",
         "Ardu works as a painter in Varnok .", "The river Sel flows through Tesh ."]
QUERIES = [{"id": "q1", "prompt": "Varnok is a city in", "target": "Belmora"},
           {"id": "q2", "prompt": "Quell was born in", "target": "Tesh"}]
OPTIONS = {"learning_rate": 1e-2, "steps": 2, "optimizer": "adam", "batch_size": 4}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, gpt2_tok):
    from hf_attrib.tiny.models import tiny_gpt2

    folder = tmp_path_factory.mktemp("model")
    tiny_gpt2(gpt2_tok, n_embd=32, n_layer=2).save_pretrained(folder)
    gpt2_tok.save_pretrained(folder)
    return folder


def write_candidates(folder: Path, files: int, per_file: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        rows = [{"id": f"c{f}-{i}", "text": TEXTS[(f + i) % len(TEXTS)] + f" {f} {i}"} for i in range(per_file)]
        (folder / f"part-{f:03d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def method(model_dir, **options):
    return ForwardINF(CausalLMAdapter.from_pretrained(str(model_dir)), progress=False, **{**OPTIONS, **options})


def test_sharded_scores_match_the_in_memory_run_and_the_model_is_unchanged(model_dir, tmp_path):
    candidates = write_candidates(tmp_path / "data", 4)
    forward_inf = method(model_dir)
    before = model_sha256(forward_inf.adapter.model)
    result = forward_inf.attribute_sharded(QUERIES, candidates, tmp_path / "run")
    assert model_sha256(forward_inf.adapter.model) == before
    rows = [json.loads(line) for f in sorted(candidates.glob("*.jsonl")) for line in f.read_text().splitlines()]
    expected = forward_inf.attribute(QUERIES, rows)
    assert result.candidate_ids == expected.candidate_ids and result.query_ids == ["q1", "q2"]
    np.testing.assert_allclose(result.scores, expected.scores, rtol=1e-9, atol=1e-12)
    assert sorted(p.name for p in (tmp_path / "run" / "shards").iterdir()) == [f"shard-0000{i}" for i in range(4)]


CHILD = """
import sys
from hf_attrib import ForwardINF
from hf_attrib.adapters import CausalLMAdapter
adapter = CausalLMAdapter.from_pretrained(sys.argv[1])
queries = {queries!r}
ForwardINF(adapter, progress=False, **{options!r}).attribute_sharded(queries, sys.argv[2], sys.argv[3])
"""


def test_a_killed_run_resumes_and_equals_an_uninterrupted_one_bit_for_bit(model_dir, tmp_path):
    candidates = write_candidates(tmp_path / "data", 40, per_file=4)
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(queries=QUERIES, options=OPTIONS), str(model_dir),
                              str(candidates), str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shards = run / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if shards.is_dir() and sum(1 for p in shards.iterdir() if p.name.startswith("shard-")) >= 2:
            break
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    finished = sorted(p.name for p in shards.iterdir() if p.name.startswith("shard-"))
    assert 2 <= len(finished) < 40 and not (run / "result").exists()

    resumed = method(model_dir).attribute_sharded(QUERIES, candidates, run)
    assert sorted(p.name for p in shards.iterdir()) == [f"shard-{i:05d}" for i in range(40)]  # no staging left
    clean = method(model_dir).attribute_sharded(QUERIES, candidates, tmp_path / "clean")
    assert resumed.candidate_ids == clean.candidate_ids
    assert np.array_equal(resumed.scores, clean.scores)  # bit for bit
    assert np.array_equal(resumed.extras["base_losses"], clean.extras["base_losses"])


def test_a_different_run_is_refused_and_a_corrupt_shard_is_named(model_dir, tmp_path):
    candidates = write_candidates(tmp_path / "data", 3)
    run = tmp_path / "run"
    method(model_dir).attribute_sharded(QUERIES, candidates, run)
    with pytest.raises(ValueError, match="different arguments"):
        method(model_dir, learning_rate=2e-2).attribute_sharded(QUERIES, candidates, run)
    changed = method(model_dir)
    with torch.no_grad():
        next(changed.adapter.model.parameters())[0, 0] += 1e-3
    with pytest.raises(ValueError, match="different model_sha256"):
        changed.attribute_sharded(QUERIES, candidates, run)
    write_candidates(tmp_path / "data", 4)
    with pytest.raises(ValueError, match="different candidates, n_shards"):
        method(model_dir).attribute_sharded(QUERIES, candidates, run)
    with pytest.raises(ValueError, match="different queries"):
        method(model_dir).attribute_sharded(QUERIES[:1], tmp_path / "data" / "part-000.jsonl", run)

    candidates = write_candidates(tmp_path / "data2", 3)
    run = tmp_path / "run2"
    method(model_dir).attribute_sharded(QUERIES, candidates, run)
    (run / "shards" / "shard-00001" / "scores.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"shard 1 \(.*shard-00001\) cannot be read"):
        method(model_dir).attribute_sharded(QUERIES, candidates, run)
    assert (run / "shards" / "shard-00000" / "scores.safetensors").is_file()  # the good shards are kept
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        method(model_dir).attribute_sharded(QUERIES, candidates, tmp_path / "full")


def test_shard_sources(tmp_path):
    from datasets import Dataset

    rows = [{"id": f"r{i}", "text": f"row {i}"} for i in range(10)]
    in_memory = CandidateShards.from_source(rows, shard_size=4)
    assert in_memory.n_shards == 3 and [r["id"] for r in in_memory.rows(2)] == ["r8", "r9"]
    dataset = Dataset.from_list(rows)
    assert CandidateShards.from_source(dataset, shard_size=4).n_shards == 3
    dataset.save_to_disk(str(tmp_path / "saved"))
    saved = CandidateShards.from_source(tmp_path / "saved", shard_size=5)
    assert saved.n_shards == 2 and [r["id"] for r in saved.rows(1)] == [f"r{i}" for i in range(5, 10)]
    (tmp_path / "parquet").mkdir()
    dataset.to_parquet(str(tmp_path / "parquet" / "a.parquet"))
    parquet = CandidateShards.from_source(tmp_path / "parquet")
    assert parquet.n_shards == 1 and len(list(parquet.rows(0))) == 10
    streamed = Dataset.from_list(rows).to_iterable_dataset(num_shards=2)
    with pytest.raises(ValueError, match="fingerprint="):
        CandidateShards.from_source(streamed)
    stream = CandidateShards.from_source(streamed, fingerprint="rev-1")
    assert stream.n_shards == 2 and sum(len(list(stream.rows(i))) for i in range(2)) == 10
    with pytest.raises(ValueError, match="neither a folder nor a data file"):
        CandidateShards.from_source(tmp_path / "missing")


def one_thread_run(model_dir, candidates, output_dir):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return method(model_dir).attribute_sharded(QUERIES, candidates, output_dir)
    finally:
        torch.set_num_threads(threads)


def test_debug_launcher_processes_give_the_same_scores_as_one(model_dir, tmp_path):
    """`accelerate.debug_launcher` (two forked processes, gloo on CPU), started from a fresh interpreter."""
    candidates = write_candidates(tmp_path / "data", 5)
    script = Path(__file__).with_name("debug_launch.py")
    done = subprocess.run([sys.executable, str(script), str(model_dir), str(candidates), str(tmp_path / "two"),
                           json.dumps(OPTIONS), json.dumps(QUERIES)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "process 0 of 2" in done.stdout and "process 1 of 2" in done.stdout
    shards = [json.loads((tmp_path / "two" / "shards" / f"shard-{i:05d}" / "result.json").read_text())
              for i in range(5)]
    assert all(s["candidate_ids"] for s in shards)
    one = one_thread_run(model_dir, candidates, tmp_path / "one")
    from hf_attrib import AttributionResult

    two = AttributionResult.load(tmp_path / "two" / "result")
    assert two.candidate_ids == one.candidate_ids and np.array_equal(two.scores, one.scores)


def test_two_processes_give_the_same_scores_as_one(model_dir, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2 ... --cpu`: two fresh processes (gloo) split the shards."""
    candidates = write_candidates(tmp_path / "data", 5)
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    options = [f"{k}={v}" for k, v in OPTIONS.items()]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "hf_attrib.cli", "attribute", str(model_dir), str(tmp_path / "queries.jsonl"), str(candidates),
               *options, "--output-dir", str(tmp_path / "two"), "--cpu", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 process(es)" in done.stdout
    one = one_thread_run(model_dir, candidates, tmp_path / "one")
    from hf_attrib import AttributionResult

    two = AttributionResult.load(tmp_path / "two" / "result")
    assert two.candidate_ids == one.candidate_ids and np.array_equal(two.scores, one.scores)
    run = json.loads((tmp_path / "two" / "result" / "run.json").read_text())  # the merged result's provenance
    assert run["model"] == {"id": str(model_dir), "revision": None, "fingerprint": model_sha256(
        CausalLMAdapter.from_pretrained(str(model_dir)).model)}
    assert run["datasets"]["candidates"]["shards"] == 5 and run["datasets"]["candidates"]["rows"] == 15
