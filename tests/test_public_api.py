"""The names DESIGN.md promises other code and users."""


def test_public_api_names():
    from hf_attrib import BM25, AttributionResult, ForwardINF, TracIn, metrics
    from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter, StableDiffusionAdapter

    assert all(callable(getattr(metrics, name)) for name in
               ("mrr", "precision_at_k", "recall_at_k", "topk_accuracy", "average_precision"))
    for cls in (BM25, AttributionResult, ForwardINF, TracIn, CausalLMAdapter, MaskedLMAdapter, StableDiffusionAdapter):
        assert cls.__module__.startswith("hf_attrib.")
