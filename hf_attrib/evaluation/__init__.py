"""Evaluation of attribution results."""

from hf_attrib.evaluation import metrics

__all__ = ["metrics"]
