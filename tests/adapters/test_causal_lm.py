import pytest
import torch

from hf_attrib.adapters import CausalLMAdapter


def test_prompt_target_loss_is_mean_nll_of_target_tokens_only(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    row = {"id": "a", "prompt": "Varnok is a city in", "target": "Belmora ."}
    loss = adapter.per_example_loss(gpt2, adapter.collate([row]))[0]
    # independent computation: tokenize the parts separately and score the target tokens by hand
    prompt_ids = gpt2_tok("Varnok is a city in")["input_ids"]
    target_ids = gpt2_tok(" Belmora .", add_prefix_space=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids])
    logprobs = torch.log_softmax(gpt2(input_ids=ids).logits[0], dim=-1)
    nll = [-logprobs[len(prompt_ids) + i - 1, t] for i, t in enumerate(target_ids)]
    assert len(target_ids) >= 2
    assert loss.item() == pytest.approx(torch.stack(nll).mean().item(), rel=1e-5)


def test_text_loss_covers_every_predicted_token(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    text = "Tesh lies in the south of Belmora ."
    loss = adapter.per_example_loss(gpt2, adapter.collate([{"id": "t", "text": text}]))[0]
    ids = torch.tensor([gpt2_tok(text)["input_ids"]])
    expected = gpt2(input_ids=ids, labels=ids).loss  # transformers' own shifted mean NLL
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_loss_alone_equals_loss_inside_padded_batch(gpt2, gpt2_tok, causal_rows):
    assert gpt2_tok.pad_token is None  # GPT-2 style: no pad token, the adapter must still pad
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    rows = causal_rows["queries"] + causal_rows["candidates"]
    batch = adapter.collate(rows)
    assert batch["attention_mask"].sum(1).min() < batch["attention_mask"].shape[1]  # really padded
    together = adapter.per_example_loss(gpt2, batch)
    alone = torch.cat([adapter.per_example_loss(gpt2, adapter.collate([row])) for row in rows])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)


def test_target_tokens_found_across_the_boundary(gpt2_tok, gpt2):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    ids, labels = adapter.encode({"id": "x", "prompt": "Quell was born in", "target": "Tesh"})
    scored = [t for t in labels if t != -100]
    assert scored == gpt2_tok(" Tesh", add_prefix_space=False)["input_ids"]
    assert ids[-len(scored):] == scored


def test_left_truncation_keeps_the_target(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok, max_length=4)
    ids, labels = adapter.encode({"id": "x", "prompt": "Quell was born in Tesh , a town of", "target": "Belmora"})
    assert len(ids) == 4 and labels[-1] == ids[-1] != -100


def test_configurable_columns(gpt2, gpt2_tok):
    adapter = CausalLMAdapter(gpt2, gpt2_tok, id_column="uid", prompt_column="q", target_column="a")
    batch = adapter.collate([{"uid": 1, "q": "Varnok is in", "a": "Belmora"}])
    assert adapter.per_example_loss(gpt2, batch).shape == (1,)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"id": "r1", "prompt": "Varnok is in", "target": ""}, "'r1'.*'target' is empty"),
        ({"id": "r2", "prompt": "Varnok is in"}, "'r2'.*'target'"),
        ({"id": "r3", "body": "no known column"}, "'r3'.*neither"),
        ({"prompt": "Varnok is in", "target": "Belmora"}, "no 'id' column"),
        ({"id": "r5", "text": "Varnok"}, "'r5'.*fewer than 2 tokens"),
    ],
)
def test_bad_rows_name_id_and_column(gpt2, gpt2_tok, row, message):
    adapter = CausalLMAdapter(gpt2, gpt2_tok)
    with pytest.raises(ValueError, match=message):
        adapter.collate([row])


def test_from_pretrained_loads_a_local_folder(tmp_path, gpt2, gpt2_tok):
    gpt2.save_pretrained(tmp_path)
    gpt2_tok.save_pretrained(tmp_path)
    adapter = CausalLMAdapter.from_pretrained(str(tmp_path))
    assert (tmp_path / "model.safetensors").is_file()
    row = {"id": "a", "prompt": "Varnok is a city in", "target": "Belmora"}
    original = CausalLMAdapter(gpt2, gpt2_tok)
    assert adapter.per_example_loss(adapter.model, adapter.collate([row])).item() == pytest.approx(
        original.per_example_loss(gpt2, original.collate([row])).item(), abs=1e-6
    )
