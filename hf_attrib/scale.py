"""`hf-attrib attribute`: Forward-INF over a large candidate set, shard by shard, on one or many processes.

    hf-attrib attribute MODEL QUERIES CANDIDATES --output-dir RUN [--family causal] [key=value ...]
    accelerate launch --multi_gpu --num_processes 2 -m hf_attrib.cli attribute ...   # processes split shards

MODEL is a folder or Hub id; QUERIES a data file or a `save_to_disk` folder (read whole); CANDIDATES a
folder of data files (one shard each), a data file, or a `save_to_disk` folder (shards of --shard-size
rows). ``key=value`` arguments are Forward-INF options (``learning_rate=1e-3 steps=3 optimizer=adam``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.data.shards import BUILDERS
from hf_attrib.runs import RunInfo

FAMILIES = ("causal", "masked", "diffusion")


def load_adapter(family: str, model: str, revision: str | None = None) -> ModelAdapter:
    if family == "causal":
        from hf_attrib.adapters import CausalLMAdapter

        return CausalLMAdapter.from_pretrained(model, revision=revision)
    if family == "masked":
        from hf_attrib.adapters import MaskedLMAdapter

        return MaskedLMAdapter.from_pretrained(model, revision=revision)
    if family == "diffusion":
        from hf_attrib.adapters import StableDiffusionAdapter

        return StableDiffusionAdapter.from_pretrained(model, revision=revision)
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def read_rows(source: str, what: str) -> list[dict]:
    """Every row of a data file (parquet, arrow, jsonl/json, csv) or a `save_to_disk` folder."""
    path = Path(source)
    if path.is_dir():
        from hf_attrib.image_tracing import load_rows

        return load_rows(str(path), what)
    if path.suffix not in BUILDERS or not path.is_file():
        raise ValueError(f"{what}: {path} is not a {', '.join(BUILDERS)} file or a save_to_disk folder")
    from datasets import load_dataset

    return list(load_dataset(BUILDERS[path.suffix], data_files=[str(path)], split="train"))


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"option {pair!r} is not key=value")
        options[key] = yaml.safe_load(value)
    return options


def run_attribute(model: str, queries: str, candidates: str, output_dir: str, *, family: str = "causal",
                  revision: str | None = None, shard_size: int = 10_000, options: list[str] | None = None,
                  cpu: bool = False, progress: bool = True):
    from accelerate import Accelerator

    from hf_attrib.methods import ForwardINF

    settings = parse_options(options or [])
    query_rows = read_rows(queries, "queries")
    accelerator = Accelerator(cpu=cpu)
    adapter = load_adapter(family, model, revision)
    # a diffusion adapter's VAE and text encoder feed the UNet: the whole pipeline moves
    getattr(adapter, "pipeline", adapter.model).to(accelerator.device)
    method = ForwardINF(adapter, progress=progress and accelerator.is_main_process, **settings)
    info = RunInfo(model_id=model, model_revision=revision)
    result = method.attribute_sharded(query_rows, candidates, output_dir, shard_size=shard_size,
                                      accelerator=accelerator, info=info)
    return result, accelerator
