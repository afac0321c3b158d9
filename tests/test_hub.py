"""The Hub, which this machine cannot reach: the push checked at the `HfApi` boundary (which repo, which
files), offline mode as one clear line, loading by repo id through the real HF cache, and no token in any
file or output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import HfApi

from hf_attrib import AttributionResult
from hf_attrib.hub import HubUnavailableError, push_run
from hf_attrib.run_report import build_report

TOKEN = "hf_testSECRETtoken0123456789abcdefXYZ"


class RecordingApi(HfApi):
    """huggingface_hub's client with its two network calls recorded instead of sent."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, *, folder_path, repo_id, **kwargs):
        files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        self.calls.append(("upload_folder", repo_id, {**kwargs, "files": files}))


@pytest.fixture
def result():
    return AttributionResult(np.array([[0.3, 0.1, 0.2]]), ["q"], ["a", "b", "c"], method="forward-inf")


def test_push_creates_the_dataset_repo_and_uploads_the_run_folder(tmp_path, result, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = result.save(tmp_path / "run", relevant={"q": {"a"}}, examples={i: {"text": i} for i in "qabc"})
    build_report(folder)
    api = RecordingApi()
    url = push_run(folder, "someone/attributions", private=True, api=api)
    assert url == "https://huggingface.co/datasets/someone/attributions"
    (create, repo, options), (upload, upload_repo, upload_options) = api.calls
    assert (create, repo, options) == ("create_repo", "someone/attributions",
                                       {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert (upload, upload_repo, upload_options["repo_type"]) == ("upload_folder", "someone/attributions", "dataset")
    assert ".*" in upload_options["ignore_patterns"]
    assert {"scores.safetensors", "result.json", "topk.parquet", "run.json", "metrics.json", "README.md",
            "report/index.html"} <= set(upload_options["files"])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_result_push_to_hub_saves_then_uploads(result):
    api = RecordingApi()
    result.push_to_hub("someone/r", api=api, relevant={"q": {"b"}})
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert "metrics.json" in api.calls[1][2]["files"] and api.calls[1][1] == "someone/r"


def test_push_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(ValueError, match="no attribution result"):
        push_run(tmp_path, "someone/r", api=RecordingApi())
    with pytest.raises(ValueError, match="not a folder"):
        push_run(tmp_path / "missing", "someone/r", api=RecordingApi())


def test_hub_errors_become_one_line(tmp_path, result):
    from huggingface_hub.errors import OfflineModeIsEnabled

    class Offline(RecordingApi):
        def create_repo(self, repo_id, **kwargs):
            raise OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/repos/create: offline mode is enabled")

    with pytest.raises(HubUnavailableError, match="offline mode is on") as caught:
        push_run(result.save(tmp_path / "run"), "someone/r", api=Offline())
    assert "\n" not in str(caught.value)


def _run(code_or_args, env_extra, cwd):
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1", **env_extra}
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300, check=False)


def test_offline_push_and_load_are_one_clear_line_and_load_reads_the_hf_cache(tmp_path, result):
    folder = result.save(tmp_path / "run", relevant={"q": {"a"}})
    done = _run(["-m", "hf_attrib.cli", "push", str(folder), "someone/r"], {}, tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "offline" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and TOKEN not in done.stdout + done.stderr

    # a dataset repo as huggingface_hub caches it: refs/main -> snapshots/<commit>/
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "datasets--someone--attributions"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    result.save(repo / "snapshots" / commit)
    code = ("import json; from hf_attrib import AttributionResult\n"
            "r = AttributionResult.load('someone/attributions')\n"
            "print(json.dumps([r.scores.tolist(), r.candidate_ids, r.method]))\n"
            "try:\n    AttributionResult.load('someone/missing')\n"
            "except ValueError as e:\n    print(str(e))\n")
    done = _run(["-c", code], {"HF_HUB_CACHE": str(tmp_path / "cache")}, tmp_path)
    assert done.returncode == 0, done.stderr
    loaded, error = done.stdout.strip().splitlines()[-2:]
    assert json.loads(loaded) == [[[0.3, 0.1, 0.2]], ["a", "b", "c"], "forward-inf"]
    assert "'someone/missing' is not a local folder" in error and "offline" in error
