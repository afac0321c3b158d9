"""hf-attrib: which training examples made a generative model produce this output."""

from hf_attrib.evaluation import metrics
from hf_attrib.methods.forward_inf import ForwardINF, ForwardINFArguments
from hf_attrib.results import AttributionResult

__version__ = "0.1.0"
__all__ = ["ForwardINF", "ForwardINFArguments", "AttributionResult", "metrics", "__version__"]
