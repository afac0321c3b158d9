"""Attribution methods: each turns (queries, candidates) into an `AttributionResult`."""

from hf_attrib.methods.bm25 import BM25, BM25Arguments
from hf_attrib.methods.forward_inf import ForwardINF, ForwardINFArguments
from hf_attrib.methods.nearest import NearestNeighbor
from hf_attrib.methods.rerank import BM25Rerank
from hf_attrib.methods.tracin import TracIn, TracInArguments

__all__ = ["BM25", "BM25Arguments", "BM25Rerank", "ForwardINF", "ForwardINFArguments", "NearestNeighbor", "TracIn",
           "TracInArguments"]
