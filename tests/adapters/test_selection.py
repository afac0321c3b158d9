import pytest

from hf_attrib.adapters import CausalLMAdapter, MaskedLMAdapter, parse_selection


def names(pairs):
    return {name for name, _ in pairs}


def test_all_selects_every_parameter(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    assert names(adapter.parameters(gpt2, "all")) == {n for n, _ in gpt2.named_parameters()}


def test_last_block_of_gpt2(gpt2, gpt2_tok):
    selected = names(CausalLMAdapter(gpt2, gpt2_tok).parameters(gpt2, "last:1"))
    assert selected and all(n.startswith("transformer.h.1.") for n in selected)
    assert selected == {n for n, _ in gpt2.named_parameters() if n.startswith("transformer.h.1.")}


def test_last_block_of_t5_counts_encoder_and_decoder(t5, t5_tok):
    selected = names(MaskedLMAdapter(t5, t5_tok).parameters(t5, 1))
    assert {n.split(".block.")[0] for n in selected} == {"encoder", "decoder"}
    assert all(".block.1." in n for n in selected)


def test_patterns(bert, bert_tok):
    selected = names(MaskedLMAdapter(bert, bert_tok).parameters(bert, ["*.attention.self.query.*"]))
    assert selected == {f"bert.encoder.layer.{i}.attention.self.query.{p}" for i in (0, 1) for p in ("weight", "bias")}


@pytest.mark.parametrize("bad", ["last:0", "last:x", "", [], [""], True])
def test_bad_selection_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="parameters"):
        parse_selection(bad)


def test_pattern_matching_nothing_names_the_pattern(gpt2, gpt2_tok):
    with pytest.raises(ValueError, match="'nothing.here'"):
        CausalLMAdapter(gpt2, gpt2_tok).parameters(gpt2, ["nothing.here"])
