"""`rag-jobs plan`: which strategy to run, and what each one costs, before spending any accelerator time.

The recommendation follows the paper's conclusions: with context labels, independent fine-tuning reaches the
EM/F1 of the joint strategies at the lowest cost; with known learning rates, one joint run (RAG-Token) needs
no grid; otherwise two-phase, whose grids find the learning rates (here with the cached phase 2).

The cost model counts the work of every step of a strategy's graph (tokens through the generator, passages
and questions through the embedder) and divides by a throughput profile measured on the target device
(`rag-jobs plan --measure`), so an estimate is in device-hours of that device. The cost model is pure (no
models, no I/O); `measure_profile` (about a minute, with the chosen models on this machine), `save_profile` and
`load_profile` make and read the profile. torch and the models are imported only by `measure_profile`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag_jobs.errors import ConfigError

# The paper's measured fine-tuning hours on HotPotQA (averaged over its four pipelines; 8x A10 nodes).
PAPER_HOTPOTQA_HOURS = {"Ft. Embed.": 3.5, "Ft. Gen.": 23.8, "Indp.": 27.4, "2-Phase": 61.0, "RAG-Seq.": 49.2,
                        "RAG-Tok.": 49.3}
ROWS = ["Ft. Embed.", "Ft. Gen.", "Indp.", "2-Phase", "2-Phase (cached)", "2-Phase (concat, cached)", "RAG-Seq.",
        "RAG-Tok."]


@dataclass(frozen=True)
class Profile:
    """Throughputs of one device (per GPU, or the whole CPU) for the chosen embedder and generator."""

    device: str
    gen_forward_tokens_per_s: float  # teacher-forced forward, no grad (frozen generator, scoring)
    gen_train_tokens_per_s: float  # forward + backward with a LoRA adapter
    gen_decode_tokens_per_s: float  # greedy decoding, new tokens per second over a batch
    embed_passages_per_s: float  # encoding passages (index build)
    embed_train_questions_per_s: float  # questions through forward + backward of the embedder
    generator: str = ""
    embedder: str = ""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, float) and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"profile field {name} must be a positive number, got {value}")


@dataclass(frozen=True)
class Workload:
    """The size of the problem: questions per split, corpus, and tokens per prompt part."""

    train: int
    validation: int
    test: int
    passages: int
    passage_tokens: float = 150.0  # mean tokens of one passage
    question_tokens: float = 80.0  # the prompt template plus the question
    answer_tokens: float = 8.0  # mean answer tokens (teacher forcing) and new tokens when decoding
    k: int = 5
    grid: int = 9  # learning rates per grid (the paper: 9)
    pool: int = 10  # cached phase 2: passages per question scored once
    has_context_labels: bool = True
    known_lrs: bool = False


@dataclass
class Estimate:
    label: str
    hours: float  # device-hours
    steps: dict[str, float] = field(default_factory=dict)  # device-hours per step kind


def _h(seconds: float) -> float:
    return seconds / 3600.0


def estimate(w: Workload, p: Profile) -> dict[str, Estimate]:
    """Device-hours of each strategy's fine-tuning (the paper's Time column: index and final test excluded)."""
    one_doc = w.passage_tokens + w.question_tokens + w.answer_tokens  # one (question, passage) prompt
    k_docs = w.k * w.passage_tokens + w.question_tokens + w.answer_tokens  # the k passages concatenated
    # end-to-end validation of one grid child: prefill k-document prompts, decode the answers
    val_e2e = w.validation * (k_docs / p.gen_forward_tokens_per_s + w.answer_tokens / p.gen_decode_tokens_per_s)
    embed_train = w.train / p.embed_train_questions_per_s
    gen_train = w.train * k_docs / p.gen_train_tokens_per_s  # Ft. Gen.: one prompt with k passages
    joint_gen_train = w.train * w.k * one_doc / p.gen_train_tokens_per_s  # k one-passage passes with grad
    frozen_scoring = w.train * w.k * one_doc / p.gen_forward_tokens_per_s  # the same, frozen, no grad
    pool = w.train * w.pool * one_doc / p.gen_forward_tokens_per_s  # cached phase 2: once per grid

    ft_embed = w.grid * (embed_train + val_e2e)
    ft_gen = w.grid * (gen_train + val_e2e)
    phase1 = w.grid * (joint_gen_train + val_e2e)
    phase2 = w.grid * (embed_train + frozen_scoring + val_e2e)
    phase2_cached = pool + w.grid * (embed_train + val_e2e)
    joint = w.grid * (joint_gen_train + embed_train + val_e2e)  # the paper searched joint runs too
    out = {
        "Ft. Embed.": Estimate("Ft. Embed.", _h(ft_embed), {"finetune-embed": _h(ft_embed)}),
        "Ft. Gen.": Estimate("Ft. Gen.", _h(ft_gen), {"finetune-gen": _h(ft_gen)}),
        "Indp.": Estimate("Indp.", _h(ft_embed + ft_gen),
                          {"finetune-embed": _h(ft_embed), "finetune-gen": _h(ft_gen)}),
        "2-Phase": Estimate("2-Phase", _h(phase1 + phase2), {"phase1": _h(phase1), "phase2": _h(phase2)}),
        "2-Phase (cached)": Estimate("2-Phase (cached)", _h(phase1 + phase2_cached),
                                     {"phase1": _h(phase1), "phase2-pool": _h(pool),
                                      "phase2": _h(phase2_cached - pool)}),
        "2-Phase (concat, cached)": Estimate("2-Phase (concat, cached)", _h(ft_gen + phase2_cached),
                                             {"finetune-gen": _h(ft_gen), "phase2-pool": _h(pool),
                                              "phase2": _h(phase2_cached - pool)}),
        "RAG-Seq.": Estimate("RAG-Seq.", _h(joint), {"joint": _h(joint)}),
        "RAG-Tok.": Estimate("RAG-Tok.", _h(joint), {"joint": _h(joint)}),
    }
    return out


def index_hours(w: Workload, p: Profile) -> float:
    return _h(w.passages / p.embed_passages_per_s)


def recommend(w: Workload) -> tuple[str, str]:
    """(strategy, reason) by the paper's conclusions."""
    if w.has_context_labels:
        return "independent", ("context labels exist: independent fine-tuning reaches the EM/F1 of the joint "
                                "strategies at the lowest cost (the paper's Figure 3)")
    if w.known_lrs:
        return "rag-token", ("learning rates are known: one joint RAG-Token run, no grid search, trains both "
                             "models end to end without context labels")
    return "two-phase", ("no context labels and no known learning rates: two-phase fine-tuning with a grid per "
                         "phase finds them (phase 2 cached: one generator scoring pass for the whole grid)")


def format_plan(w: Workload, p: Profile, *, gpus: int = 1, paper: bool = False) -> str:
    """The plan as text: the recommendation, then a table of device-hours and wall hours on `gpus` devices."""
    strategy, reason = recommend(w)
    est = estimate(w, p)
    lines = [f"recommended: {strategy}", f"  because {reason}", "",
             f"workload: {w.train} train / {w.validation} validation / {w.test} test questions, "
             f"{w.passages:,} passages, k={w.k}, grid={w.grid}, pool={w.pool}",
             f"profile: {p.device} (generator {p.generator or '?'}: forward {p.gen_forward_tokens_per_s:.0f}, "
             f"train {p.gen_train_tokens_per_s:.0f}, decode {p.gen_decode_tokens_per_s:.1f} tokens/s; embedder "
             f"{p.embed_passages_per_s:.0f} passages/s, {p.embed_train_questions_per_s:.0f} train q/s)",
             f"index build (shared by every strategy): {index_hours(w, p):.2f} device-hours", ""]
    ref = est["Ft. Gen."].hours
    head = f"| strategy | device-hours | wall hours on {gpus} | relative to Ft. Gen. |"
    sep = "|---|---:|---:|---:|"
    if paper:
        head += " paper (h) | paper relative |"
        sep += "---:|---:|"
    lines += [head, sep]
    for row in ROWS:
        e = est[row]
        cells = f"| {row} | {e.hours:.2f} | {e.hours / gpus:.2f} | {e.hours / ref:.2f} |"
        if paper:
            ph = PAPER_HOTPOTQA_HOURS.get(row)
            cells += (f" {ph:.1f} | {ph / PAPER_HOTPOTQA_HOURS['Ft. Gen.']:.2f} |" if ph is not None else " - | - |")
        lines.append(cells)
    return "\n".join(lines)


# The throughput profile the estimates divide by: measured on the target device, saved, loaded.

WORDS = ("river", "mountain", "castle", "violin", "comet", "harbour", "glacier", "orchard", "lantern", "meadow")


def _timed(fn, repeat: int = 2) -> float:
    fn()  # warm-up (allocations, kernels)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def measure_profile(embedder: str, generator: str, *, device: str = "cpu", seq_len: int = 256,
                    batch: int = 4) -> Profile:
    import torch

    from rag_jobs.models import load_embedder, load_generator
    from rag_jobs.models.device import device_kind, resolve_device
    from rag_jobs.models.embedder import embed_with_grad
    from rag_jobs.models.lora import add_lora

    dev = resolve_device(device)
    gen, tok = load_generator(generator, device=dev, quantization="auto")
    gen.eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, min(len(tok), 30000), (batch, seq_len), generator=g).to(dev)
    att = torch.ones_like(ids)
    with torch.no_grad():
        fwd_s = _timed(lambda: gen(input_ids=ids, attention_mask=att, logits_to_keep=1))

    def decode():
        with torch.no_grad():
            gen.generate(input_ids=ids, attention_mask=att, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                         pad_token_id=tok.eos_token_id)

    decode_s = max(_timed(decode, repeat=1) - fwd_s, 1e-6)  # the prefill is the forward measured above
    lora = add_lora(gen, r=16)
    lora.train()
    half = ids[: max(1, batch // 2)]

    def train_step():
        out = lora(input_ids=half, attention_mask=torch.ones_like(half), labels=half)
        out.loss.backward()
        lora.zero_grad(set_to_none=True)

    train_s = _timed(train_step)
    emb = load_embedder(embedder, device=dev)
    passages = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(110)) for i in range(64)]
    with torch.inference_mode():
        enc_s = _timed(lambda: emb.encode(passages, batch_size=64, convert_to_numpy=True), repeat=1)
    emb.train()
    questions = [f"which {WORDS[i % 10]} lies near the {WORDS[(i + 3) % 10]} of the {WORDS[(i + 5) % 10]}?"
                 for i in range(16)]

    def emb_step():
        embed_with_grad(emb, questions).pow(2).sum().backward()
        emb.zero_grad(set_to_none=True)

    emb_train_s = _timed(emb_step)
    kind, _ = device_kind(dev)
    return Profile(device=kind, gen_forward_tokens_per_s=batch * seq_len / fwd_s,
                   gen_train_tokens_per_s=half.numel() / train_s, gen_decode_tokens_per_s=batch * 16 / decode_s,
                   embed_passages_per_s=len(passages) / enc_s, embed_train_questions_per_s=len(questions) / emb_train_s,
                   generator=generator, embedder=embedder)


def save_profile(profile: Profile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(profile), indent=2))


def load_profile(path: Path) -> Profile:
    try:
        data = json.loads(Path(path).read_text())
        if "profile" in data:  # a benchmark result that embeds one
            data = data["profile"]
        return Profile(**data)
    except FileNotFoundError:
        raise ConfigError(f"profile file {path} does not exist (make one with `rag-jobs plan --measure`)") from None
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"profile file {path} is not a valid profile: {str(exc).splitlines()[0]}") from None
