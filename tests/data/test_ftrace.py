"""The FTRACE-TREX loader on local fixtures in the exact schema, malformed rows included."""

import json

import pytest

from hf_attrib.data.fact_corpus import generate_fact_corpus
from hf_attrib.data.ftrace import causal_rows, load_ftrace, span_rows, write_ftrace

ABSTRACT = {
    "inputs_pretokenized": "The Eiffel Tower is a tower in <extra_id_0> , France .",
    "targets_pretokenized": "<extra_id_0> Paris",
    "masked_uri": "Q90", "masked_type": "city", "facts": "P131,Q243,Q90;P17,Q243,Q142",
    "id": "abs-1", "example_uris": "Q243", "page_uri": "Q243",
}
QUERY = {
    "inputs_pretokenized": "The Eiffel Tower is located in <extra_id_0> .",
    "targets_pretokenized": "<extra_id_0> Paris",
    "uuid": "lama-1", "predicate_id": "P131", "sub_uri": "Q243", "obj_uri": "Q90",
    "sub_label": "Eiffel Tower", "obj_label": "Paris",
}


def write(folder, abstracts, queries, suffix=".jsonl"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("abstracts", abstracts), ("queries", queries)):
        if suffix == ".parquet":
            from datasets import Dataset

            Dataset.from_list(rows).to_parquet(str(folder / f"{name}.parquet"))
        else:
            (folder / f"{name}{suffix}").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_loads_a_local_folder_and_finds_proponents(tmp_path, suffix):
    other = dict(ABSTRACT, id="abs-2", facts="P17,Q243,Q142")
    data = load_ftrace(str(write(tmp_path, [ABSTRACT, other], [QUERY], suffix)))
    assert [a["id"] for a in data.abstracts] == ["abs-1", "abs-2"]
    assert data.proponents() == {"lama-1": {"abs-1"}}
    assert data.skipped == {}


def test_explicit_files(tmp_path):
    write(tmp_path, [ABSTRACT], [QUERY])
    data = load_ftrace(abstracts=str(tmp_path / "abstracts.jsonl"), queries=str(tmp_path / "queries.jsonl"))
    assert len(data.abstracts) == len(data.queries) == 1


def test_malformed_rows_are_skipped_and_counted(tmp_path):
    no_facts = dict(ABSTRACT, id="abs-nofacts", facts="")
    empty_target = dict(ABSTRACT, id="abs-empty", targets_pretokenized="<extra_id_0> ")
    bad_query = dict(QUERY, uuid="lama-bad", targets_pretokenized="")
    folder = write(tmp_path, [ABSTRACT, no_facts, empty_target], [QUERY, bad_query])
    data = load_ftrace(str(folder))
    assert data.skipped == {"abstracts": 2, "queries": 1}
    assert [a["id"] for a in data.abstracts] == ["abs-1"]
    with pytest.raises(ValueError, match=r"abstracts.jsonl: row 1 \(id='abs-nofacts'\) has no 'facts'"):
        load_ftrace(str(folder), on_malformed="error")


def test_missing_column_names_file_and_column(tmp_path):
    broken = {k: v for k, v in QUERY.items() if k != "obj_uri"}
    with pytest.raises(ValueError, match=r"queries.jsonl: missing column\(s\) \['obj_uri'\]"):
        load_ftrace(str(write(tmp_path, [ABSTRACT], [broken])))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="no abstracts.jsonl"):
        load_ftrace(str(tmp_path))
    with pytest.raises(ValueError, match="both"):
        load_ftrace(abstracts="a.jsonl")


def test_generated_corpus_round_trips_through_the_loader(tmp_path):
    corpus = generate_fact_corpus(people=6, cities=5, countries=4, queries=8, seed=2)
    data = load_ftrace(str(write_ftrace(corpus, tmp_path)))
    assert data.abstracts == corpus.abstracts and data.queries == corpus.queries
    assert data.proponents() == corpus.proponents()


def test_views():
    (text,) = causal_rows([ABSTRACT], "text")
    assert text == {"id": "abs-1", "text": "The Eiffel Tower is a tower in Paris , France ."}
    (target,) = causal_rows([ABSTRACT], "target")
    assert target == {"id": "abs-1", "prompt": "The Eiffel Tower is a tower in", "target": "Paris"}
    (span,) = span_rows([QUERY])
    assert span == {"id": "lama-1", "input": QUERY["inputs_pretokenized"], "target": "<extra_id_0> Paris"}
    with pytest.raises(ValueError, match="loss_on"):
        causal_rows([ABSTRACT], "all")
