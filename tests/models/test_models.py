import pytest

from rag_jobs.errors import ConfigError, ModelError
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.models.device import resolve_device, resolve_quantization
from rag_jobs.models.generation import format_prompt, generate_answers


def test_unknown_names_are_model_errors():
    with pytest.raises(ModelError, match="unknown embedder"):
        load_embedder("no-such-model")
    with pytest.raises(ModelError, match="unknown generator"):
        load_generator("no-such-model")
    with pytest.raises(ModelError):
        load_generator("/nonexistent/path")


def test_device_policy_on_cpu():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError):
        resolve_device("tpu")
    assert resolve_quantization("auto", "cpu") == "none"  # unquantized is faster on a CPU
    with pytest.raises(ConfigError):
        resolve_quantization("int3", "cpu")


def test_minilm_alias_loads_offline():
    model = load_embedder("minilm")
    assert model.encode(["hello"]).shape == (1, 384)


def test_tiny_generator_generates_in_batches(tiny_generator):
    model, tok = load_generator(tiny_generator, quantization="none")
    prompts = [format_prompt(tok, q, ["ctx " * n]) for q, n in (("Who?", 3), ("Where is it?", 40), ("Why?", 1))]
    assert prompts[0].startswith("<|im_start|>")
    answers = generate_answers(model, tok, prompts, batch_size=2, max_new_tokens=4)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    # batched greedy equals one-by-one greedy
    single = [generate_answers(model, tok, [p], batch_size=1, max_new_tokens=4)[0] for p in prompts]
    assert answers == single


def test_prompt_is_shortened_to_fit(tiny_generator):
    _, tok = load_generator(tiny_generator, quantization="none")
    long = format_prompt(tok, "Question kept?", ["word " * 2000], max_prompt_tokens=200)
    assert len(tok(long, add_special_tokens=False)["input_ids"]) <= 200
    assert "Question kept?" in long


def test_answer_logprobs_keeps_only_answer_logits_and_matches_full():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rag_jobs.core.losses import token_logprobs
    from rag_jobs.models.lora import answer_logprobs

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 50, (3, 12))
    att = torch.ones_like(ids)
    att[0, :4] = 0  # left padding
    labels = torch.full_like(ids, -100)
    labels[:, -3:] = ids[:, -3:]
    labels[1, -3] = -100  # a shorter answer
    lp, mask = answer_logprobs(model, {"input_ids": ids, "attention_mask": att, "labels": labels}, 3)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    full = token_logprobs(model(input_ids=ids, attention_mask=att, position_ids=pos).logits, labels)[:, -3:]
    torch.testing.assert_close(lp, full)
    assert mask.tolist() == [[True, True, True], [False, True, True], [True, True, True]]
