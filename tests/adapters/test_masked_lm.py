import pytest
import torch

from hf_attrib.adapters import MaskedLMAdapter


def test_t5_loss_equals_transformers_loss_per_example(t5, t5_tok, span_rows):
    adapter = MaskedLMAdapter(t5, t5_tok)
    losses = adapter.per_example_loss(t5, adapter.collate(span_rows))
    for row, loss in zip(span_rows, losses, strict=True):
        target = row["target"] if row["target"].startswith("<extra_id_0>") else f"<extra_id_0> {row['target']}"
        inputs = t5_tok(row["input"], return_tensors="pt")
        labels = t5_tok(target, return_tensors="pt")["input_ids"]
        expected = t5(**inputs, labels=labels).loss  # T5's own mean cross-entropy over the target
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bert_fills_the_blank_with_one_mask_per_answer_token(bert, bert_tok):
    adapter = MaskedLMAdapter(bert, bert_tok)
    row = {"id": "b", "input": "Quell was born in <extra_id_0> , a town .", "target": "<extra_id_0> Tesh Belmora"}
    ids, labels = adapter.encode(row)
    answer = bert_tok("Tesh Belmora", add_special_tokens=False)["input_ids"]
    assert ids.count(bert_tok.mask_token_id) == len(answer) == 2
    assert [t for t in labels if t != -100] == answer
    # independent loss: log-probabilities of the answer at the mask positions
    logits = bert(input_ids=torch.tensor([ids])).logits[0]
    positions = [i for i, t in enumerate(ids) if t == bert_tok.mask_token_id]
    logprobs = torch.log_softmax(logits, -1)
    expected = -torch.stack([logprobs[p, t] for p, t in zip(positions, answer, strict=True)]).mean()
    loss = adapter.per_example_loss(bert, adapter.collate([row]))[0]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_loss_alone_equals_loss_inside_padded_batch(request, family, span_rows):
    model, tok = request.getfixturevalue(family), request.getfixturevalue(f"{family}_tok")
    adapter = MaskedLMAdapter(model, tok)
    batch = adapter.collate(span_rows)
    assert batch["attention_mask"].sum(1).min() < batch["attention_mask"].shape[1]
    together = adapter.per_example_loss(model, batch)
    alone = torch.cat([adapter.per_example_loss(model, adapter.collate([row])) for row in span_rows])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"id": "m1", "input": "Varnok is in <extra_id_0> .", "target": ""}, "'m1'.*'target' is empty"),
        ({"id": "m2", "input": "Varnok is in <extra_id_0> .", "target": "<extra_id_0>"}, "'m2'.*no answer"),
        ({"id": "m3", "input": "Varnok is in Belmora .", "target": "Belmora"}, "'m3'.*no blank"),
        ({"id": "m4", "target": "Belmora"}, "'m4'.*'input'"),
    ],
)
@pytest.mark.parametrize("family", ["t5", "bert"])
def test_bad_rows_name_id_and_column(request, family, row, message):
    adapter = MaskedLMAdapter(request.getfixturevalue(family), request.getfixturevalue(f"{family}_tok"))
    with pytest.raises(ValueError, match=message):
        adapter.collate([row])


def test_ftrace_columns(t5, t5_tok):
    adapter = MaskedLMAdapter(t5, t5_tok, id_column="uuid", input_column="inputs_pretokenized",
                              target_column="targets_pretokenized")
    row = {"uuid": "u1", "inputs_pretokenized": "Varnok is in <extra_id_0> .",
           "targets_pretokenized": "<extra_id_0> Belmora"}
    assert adapter.per_example_loss(t5, adapter.collate([row])).shape == (1,)


def test_from_pretrained_picks_seq2seq_or_masked_lm(tmp_path, t5, t5_tok, bert, bert_tok):
    for name, model, tok in (("t5", t5, t5_tok), ("bert", bert, bert_tok)):
        model.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
        adapter = MaskedLMAdapter.from_pretrained(str(tmp_path / name))
        assert type(adapter.model) is type(model)
        assert adapter.encoder_decoder == (name == "t5")
