"""Model-family adapters: how examples become batches and the loss of each example."""

from hf_attrib.adapters.base import ModelAdapter
from hf_attrib.adapters.causal_lm import CausalLMAdapter
from hf_attrib.adapters.classifier import ClassifierAdapter
from hf_attrib.adapters.diffusion import StableDiffusionAdapter
from hf_attrib.adapters.masked_lm import MaskedLMAdapter
from hf_attrib.adapters.selection import parse_selection

__all__ = ["ModelAdapter", "CausalLMAdapter", "ClassifierAdapter", "MaskedLMAdapter", "StableDiffusionAdapter",
           "parse_selection"]
