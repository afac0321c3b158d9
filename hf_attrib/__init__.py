"""hf-attrib: which training examples made a generative model produce this output."""

from hf_attrib.evaluation import metrics
from hf_attrib.methods import BM25, BM25Rerank, ForwardINF, ForwardINFArguments, NearestNeighbor, TracIn
from hf_attrib.results import AttributionResult

__version__ = "0.1.0"
__all__ = ["ForwardINF", "ForwardINFArguments", "TracIn", "BM25", "BM25Rerank", "NearestNeighbor",
           "AttributionResult", "metrics", "__version__"]
