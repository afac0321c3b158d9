"""Run by test_sharded in a fresh interpreter: `accelerate.debug_launcher` forks two processes that score the
shards of one run together (forking the pytest process itself would hang: its OpenMP pool is already up).

    python tests/engine/debug_launch.py MODEL_DIR CANDIDATES OUTPUT_DIR OPTIONS_JSON QUERIES_JSON
"""

import json
import sys

from accelerate import debug_launcher


def work(model_dir: str, candidates: str, output_dir: str, options: str, queries: str) -> None:
    import torch
    from accelerate import Accelerator

    from hf_attrib import ForwardINF
    from hf_attrib.adapters import CausalLMAdapter

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    method = ForwardINF(CausalLMAdapter.from_pretrained(model_dir), progress=False, **json.loads(options))
    method.attribute_sharded(json.loads(queries), candidates, output_dir, accelerator=accelerator)
    print(f"process {accelerator.process_index} of {accelerator.num_processes}", flush=True)


if __name__ == "__main__":
    debug_launcher(work, args=tuple(sys.argv[1:]), num_processes=2)
