"""Model- and method-agnostic machinery: reversible ascent, batched loss scoring, fine-tuning."""

from hf_attrib.engine.arguments import AscentArguments
from hf_attrib.engine.ascent import ReversibleAscent
from hf_attrib.engine.finetune import FinetuneArguments, finetune
from hf_attrib.engine.scoring import BaseLossCache, EncodedRows, example_losses
from hf_attrib.engine.state import preserved_model_state

__all__ = [
    "AscentArguments",
    "ReversibleAscent",
    "FinetuneArguments",
    "finetune",
    "BaseLossCache",
    "EncodedRows",
    "example_losses",
    "preserved_model_state",
]
