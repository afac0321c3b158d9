import json

import numpy as np
import pytest

from hf_attrib import AttributionResult


@pytest.fixture
def result():
    scores = np.array([[0.1, 0.5, 0.5, -1.0], [2.0, 0.0, 1.0, 3.0]])
    return AttributionResult(scores, ["q1", "q2"], ["a", "b", "c", "d"], method="test",
                             config={"learning_rate": 0.01}, extras={"base_losses": np.arange(4.0)})


def test_topk_best_first_ties_in_candidate_order(result):
    assert result.topk(3) == [[("b", 0.5), ("c", 0.5), ("a", 0.1)], [("d", 3.0), ("a", 2.0), ("c", 1.0)]]
    with pytest.raises(ValueError):
        result.topk(0)


def test_save_load_round_trip(tmp_path, result):
    folder = result.save(tmp_path / "run")
    assert (folder / "scores.safetensors").is_file()
    assert json.loads((folder / "result.json").read_text())["query_ids"] == ["q1", "q2"]
    loaded = AttributionResult.load(folder)
    np.testing.assert_array_equal(loaded.scores, result.scores)
    assert loaded.scores.dtype == np.float64
    assert (loaded.query_ids, loaded.candidate_ids, loaded.method) == (result.query_ids, result.candidate_ids, "test")
    assert loaded.config == result.config
    np.testing.assert_array_equal(loaded.extras["base_losses"], np.arange(4.0))


def test_interrupted_save_leaves_the_previous_result_whole(tmp_path, result, monkeypatch):
    folder = result.save(tmp_path / "run")
    import safetensors.numpy

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", fail)
    changed = AttributionResult(result.scores + 1, result.query_ids, result.candidate_ids)
    with pytest.raises(OSError):
        changed.save(folder)
    np.testing.assert_array_equal(AttributionResult.load(folder).scores, result.scores)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left behind


def test_load_names_the_missing_file(tmp_path):
    with pytest.raises(ValueError, match="scores.safetensors is missing"):
        AttributionResult.load(tmp_path)


def test_shape_and_id_checks():
    with pytest.raises(ValueError, match="shape"):
        AttributionResult(np.zeros((2, 2)), ["q"], ["a", "b"])
    with pytest.raises(ValueError, match="not unique"):
        AttributionResult(np.zeros((1, 2)), ["q"], ["a", "a"])


def test_to_dataset_long_format(result):
    dataset = result.to_dataset()
    assert len(dataset) == 8
    first = dataset[0]
    assert (first["query_id"], first["candidate_id"], first["rank"], first["score"]) == ("q1", "b", 1, 0.5)
