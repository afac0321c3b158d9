"""Attribution methods: each turns (queries, candidates) into an `AttributionResult`."""

from hf_attrib.methods.forward_inf import ForwardINF, ForwardINFArguments

__all__ = ["ForwardINF", "ForwardINFArguments"]
