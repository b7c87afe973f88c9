"""QLoRA's 4-bit path on the CPU: bitsandbytes runs NF4 there (float32 compute), so `quantization: nf4` runs
the code a GPU runs: a 4-bit base, peft's k-bit preparation, LoRA on top, an unmerged adapter at evaluation."""

from __future__ import annotations

import pytest
import torch

from rag_jobs.errors import ConfigError
from rag_jobs.models import device as device_policy
from rag_jobs.models import load_generator
from rag_jobs.models.device import resolve_quantization
from rag_jobs.models.lora import add_lora, answer_logprobs, encode_prompt_answer, max_answer_len

pytest.importorskip("bitsandbytes")


def test_nf4_resolves_on_the_cpu_and_auto_stays_unquantized():
    assert resolve_quantization("nf4", "cpu") == "nf4"
    assert resolve_quantization("auto", "cpu") == "none"
    assert resolve_quantization("none", "cpu") == "none"


def test_nf4_without_bitsandbytes_names_the_package(monkeypatch):
    monkeypatch.setattr(device_policy, "has_bitsandbytes", lambda: False)
    with pytest.raises(ConfigError, match="bitsandbytes"):
        resolve_quantization("nf4", "cpu")
    assert resolve_quantization("auto", "cuda") == "none"


def _linear4bit_count(model) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def test_the_tiny_generator_loads_in_nf4_on_the_cpu(tiny_generator):
    model, _ = load_generator(tiny_generator, device="cpu", quantization="nf4")
    assert model.is_loaded_in_4bit and _linear4bit_count(model) == 2 * 7  # every projection of both layers
    layer = next(m for m in model.modules() if type(m).__name__ == "Linear4bit")
    assert layer.weight.quant_type == "nf4" and layer.compute_dtype == torch.float32
    assert next(model.parameters()).device.type == "cpu"


def _step(model, tok):
    enc = encode_prompt_answer(tok, ["Q: where is Oslo? A:", "Q: who wrote it? A:"], ["Norway", "Ibsen"])
    lp, mask = answer_logprobs(model, enc, max_answer_len(enc))  # (2, T)
    return -(lp * mask).sum() / mask.sum()


def test_qlora_trains_the_adapter_and_leaves_the_4bit_base_alone(tiny_generator):
    torch.manual_seed(0)
    model, tok = load_generator(tiny_generator, device="cpu", quantization="nf4")
    model = add_lora(model, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():  # bitsandbytes' CPU backend repacks the codes on the first forward (same weights)
        _step(model, tok)
    packed = [b.detach().clone() for b in model.parameters() if b.dtype == torch.uint8]  # the NF4 codes
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    losses = []
    for _ in range(3):
        loss = _step(model, tok)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    after = [b for b in model.parameters() if b.dtype == torch.uint8]
    assert len(after) == len(packed) == 14
    assert all(torch.equal(a, b) for a, b in zip(after, packed))  # they never change: only LoRA weights train


@pytest.mark.parametrize("quantization", ["nf4", "none"])
def test_gradient_checkpointing_is_not_reentrant(tiny_generator, quantization):
    """peft's k-bit preparation used to get no checkpointing kwargs, so torch fell back to the reentrant
    variant (with a warning); both paths now ask for use_reentrant=False."""
    model, _ = load_generator(tiny_generator, device="cpu", quantization=quantization)
    model = add_lora(model, r=4, alpha=8, gradient_checkpointing=True)
    funcs = [m._gradient_checkpointing_func for m in model.modules() if hasattr(m, "_gradient_checkpointing_func")]
    assert funcs and all(f.keywords.get("use_reentrant") is False for f in funcs)


def test_evaluation_loads_an_unmerged_adapter_on_the_4bit_base(tiny_generator, tmp_path):
    torch.manual_seed(0)
    model, _ = load_generator(tiny_generator, device="cpu", quantization="nf4")
    model = add_lora(model, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a trained adapter: B is no longer zero
    model.save_pretrained(str(tmp_path / "adapter"), safe_serialization=True)
    loaded, tok = load_generator(tiny_generator, device="cpu", quantization="nf4",
                                 adapter_dir=str(tmp_path / "adapter"))
    assert type(loaded).__name__ == "PeftModelForCausalLM" and _linear4bit_count(loaded) == 14  # never merged
    base, _ = load_generator(tiny_generator, device="cpu", quantization="nf4")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(_step(loaded, tok), _step(model, tok))
        assert not torch.allclose(_step(loaded, tok), _step(base, tok))
