"""FTRACE-TREX (Akyürek et al., 2022): abstracts that state facts, and LAMA queries asking for them.

Schema (the Hub dataset ``ekinakyurek/ftrace``, configs ``abstracts`` and ``queries``)::

    abstracts: inputs_pretokenized  "… <extra_id_0> …"       queries: inputs_pretokenized  "… <extra_id_0> ."
               targets_pretokenized "<extra_id_0> answer"              targets_pretokenized "<extra_id_0> answer"
               facts   "P361,Q48,Q771405;P17,…"                        uuid, predicate_id, sub_uri, obj_uri
               id, masked_uri, …

A query's proponents are the abstracts whose ``facts`` contain its (predicate_id, sub_uri, obj_uri).

Malformed rows — an abstract without ``facts``, or any row with an empty input or target — are skipped
and counted in :attr:`FTrace.skipped` (``on_malformed="skip"``, the default), or raise a `ValueError`
naming the file and the row (``on_malformed="error"``). A missing column is always an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hf_attrib.data.fact_corpus import BLANK, FactCorpus

HUB_ID = "ekinakyurek/ftrace"
ABSTRACT_COLUMNS = ("inputs_pretokenized", "targets_pretokenized", "facts", "id")
QUERY_COLUMNS = ("inputs_pretokenized", "targets_pretokenized", "uuid", "predicate_id", "sub_uri", "obj_uri")


@dataclass
class FTrace:
    """Loaded abstracts and queries (lists of dicts in the FTRACE schema) and what was skipped."""

    abstracts: list[dict]
    queries: list[dict]
    skipped: dict[str, int] = field(default_factory=dict)

    def proponents(self) -> dict[str, set[str]]:
        """query uuid -> ids of the abstracts stating its fact."""
        index = fact_index(self.abstracts)
        return {q["uuid"]: set(index.get(query_fact(q), ())) for q in self.queries}


def fact_index(abstracts: list[dict]) -> dict[tuple[str, str, str], list[str]]:
    """(predicate, subject, object) -> ids of the abstracts whose ``facts`` state it."""
    index: dict[tuple[str, str, str], list[str]] = {}
    for abstract in abstracts:
        for fact in str(abstract["facts"]).split(";"):
            parts = tuple(part.strip() for part in fact.split(","))
            if len(parts) == 3 and all(parts):
                index.setdefault(parts, []).append(str(abstract["id"]))
    return index


def query_fact(query: dict) -> tuple[str, str, str]:
    return (str(query["predicate_id"]), str(query["sub_uri"]), str(query["obj_uri"]))


def load_ftrace(
    source: str = HUB_ID,
    *,
    abstracts: str | None = None,
    queries: str | None = None,
    revision: str | None = None,
    on_malformed: str = "skip",
) -> FTrace:
    """Load FTRACE-TREX from the Hub id, a local folder holding ``abstracts.{jsonl,json,parquet}`` and
    ``queries.{…}``, or the two files given explicitly."""
    if on_malformed not in ("skip", "error"):
        raise ValueError(f"on_malformed must be 'skip' or 'error', got {on_malformed!r}")
    if abstracts or queries:
        if not (abstracts and queries):
            raise ValueError("pass both abstracts= and queries= files, or a source folder / Hub id")
        files = {"abstracts": Path(abstracts), "queries": Path(queries)}
    elif Path(source).is_dir():
        files = {name: _find(Path(source), name) for name in ("abstracts", "queries")}
    elif Path(source).exists():
        raise ValueError(f"{source} is a file; pass abstracts= and queries= files or a folder holding both")
    else:
        return _validated(_from_hub(source, revision), on_malformed)
    rows = {name: (_read(path), str(path)) for name, path in files.items()}
    return _validated(rows, on_malformed)


def _find(folder: Path, name: str) -> Path:
    for suffix in (".jsonl", ".json", ".parquet"):
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    raise ValueError(f"{folder} has no {name}.jsonl, {name}.json or {name}.parquet")


def _read(path: Path) -> list[dict]:
    from datasets import load_dataset

    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    builder = "parquet" if path.suffix == ".parquet" else "json"
    return list(load_dataset(builder, data_files=str(path), split="train"))


def _from_hub(source: str, revision: str | None) -> dict[str, tuple[list[dict], str]]:
    from datasets import load_dataset

    out = {}
    for name in ("abstracts", "queries"):
        dataset = load_dataset(source, name, revision=revision)
        split = "train" if "train" in dataset else next(iter(dataset))
        out[name] = (list(dataset[split]), f"{source}[{name}]")
    return out


def _validated(rows: dict[str, tuple[list[dict], str]], on_malformed: str) -> FTrace:
    kept: dict[str, list[dict]] = {}
    skipped: dict[str, int] = {}
    for name, columns, id_column in (("abstracts", ABSTRACT_COLUMNS, "id"), ("queries", QUERY_COLUMNS, "uuid")):
        data, where = rows[name]
        if not data:
            raise ValueError(f"{where}: no {name}")
        missing = [c for c in columns if c not in data[0]]
        if missing:
            raise ValueError(f"{where}: missing column(s) {missing} (columns: {sorted(data[0])})")
        kept[name] = []
        for index, row in enumerate(data):
            problem = _problem(row, name)
            if problem is None:
                kept[name].append(dict(row))
            elif on_malformed == "error":
                raise ValueError(f"{where}: row {index} ({id_column}={row.get(id_column)!r}) {problem}")
            else:
                skipped[name] = skipped.get(name, 0) + 1
        if not kept[name]:
            raise ValueError(f"{where}: every row is malformed")
    return FTrace(kept["abstracts"], kept["queries"], skipped)


def _problem(row: dict, name: str) -> str | None:
    for column in ("inputs_pretokenized", "targets_pretokenized"):
        value = row.get(column)
        if not isinstance(value, str) or not value.replace(BLANK, "").strip():
            return f"has an empty {column!r}"
    if BLANK not in row["inputs_pretokenized"]:
        return f"has no {BLANK} in 'inputs_pretokenized'"
    if name == "abstracts" and not str(row.get("facts") or "").strip():
        return "has no 'facts'"
    return None


def write_ftrace(corpus: FactCorpus | FTrace, folder: str | Path) -> Path:
    """Write abstracts.jsonl and queries.jsonl (the schema `load_ftrace` reads)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("abstracts", "queries"):
        rows = getattr(corpus, name)
        (target / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return target


# ---- views: FTRACE rows as rows of the adapters ----------------------------------------------------------
def answer(row: dict) -> str:
    return row["targets_pretokenized"].replace(BLANK, "", 1).strip()


def fill_blank(row: dict) -> str:
    """The text with its blank filled by its target."""
    return row["inputs_pretokenized"].replace(BLANK, answer(row), 1)


def row_id(row: dict) -> str:
    return str(row["uuid"] if "uuid" in row else row["id"])


def causal_query(row: dict) -> dict:
    """A query as a causal-LM row: the text before the blank is the prompt, the answer the target."""
    prompt = row["inputs_pretokenized"].split(BLANK, 1)[0].rstrip()
    return {"id": row_id(row), "prompt": prompt, "target": answer(row)}


def causal_text(row: dict) -> dict:
    """An abstract as a causal-LM text row (loss on every token)."""
    return {"id": row_id(row), "text": fill_blank(row)}


def causal_rows(rows: list[dict], loss_on: str = "text") -> list[dict]:
    """Causal-LM rows: ``loss_on="text"`` (the filled text, every token) or ``"target"`` (the masked
    span given the text before it)."""
    if loss_on not in ("text", "target"):
        raise ValueError(f"loss_on must be 'text' or 'target', got {loss_on!r}")
    return [causal_text(r) if loss_on == "text" else causal_query(r) for r in rows]


def span_rows(rows: list[dict]) -> list[dict]:
    """T5/BERT rows for `MaskedLMAdapter` with its default columns."""
    return [{"id": row_id(r), "input": r["inputs_pretokenized"], "target": r["targets_pretokenized"]} for r in rows]
