"""End-to-end scoring shared by `evaluate` and the validation of grid children: retrieve, generate, score."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rag_jobs.core import metrics as M
from rag_jobs.data.records import Example
from rag_jobs.index import encode_texts
from rag_jobs.models.generation import format_prompt, generate_answers
from rag_jobs.progress import Progress


def score_examples(
    retriever,
    examples: Sequence[Example],
    embedder,
    generator=None,
    *,
    k: int = 5,
    recall_k: int = 5,
    max_prompt_tokens: int = 1024,
    batch_size: int = 8,
    max_new_tokens: int = 24,
    label: str = "score",
    known_answers: dict[str, dict] | None = None,
    f1_rule: str = "squad",
) -> tuple[list[dict], dict]:
    """Rows (one per question) and summary metrics; generation is skipped when `generator` is None.
    `f1_rule`: squad, or hotpotqa for HotPotQA datasets (rag_jobs.core.metrics.f1).

    `known_answers`: {question id: {"ids": retrieved ids, "prediction": answer}} from an earlier greedy pass of
    the same generator and prompt settings; a question that retrieves the same passages reuses its answer.
    """
    q_vecs = encode_texts(embedder, [e.question for e in examples])
    result = retriever.search(q_vecs, max(k, recall_k))
    labelled = any(e.labelled for e in examples)
    answer_name = f"answer_recall@{recall_k}"
    recall_name = f"recall@{recall_k}" if labelled else answer_name
    rows = []
    for ex, ids in zip(examples, result.ids):
        row = {"id": ex.id, "question": ex.question, "answers": list(ex.answers), "retrieved": ids[:k],
               answer_name: M.answer_recall_at_k([p.content for p in retriever.passages(ids[:recall_k])], ex.answers,
                                                 recall_k)}
        if labelled:  # gold passages (or, over an external corpus, gold titles) found; NaN for an unlabelled one
            row[recall_name] = M.group_recall_at_k(ids, ex.recall_groups, recall_k) if ex.labelled else math.nan
        rows.append(row)
    if generator is not None:
        model, tok = generator
        known = known_answers or {}
        preds: list[str | None] = [
            known[ex.id]["prediction"] if ex.id in known and list(known[ex.id]["ids"]) == list(r["retrieved"])
            else None for ex, r in zip(examples, rows)
        ]
        todo = [i for i, p in enumerate(preds) if p is None]
        prompts = [
            format_prompt(tok, examples[i].question, [p.content for p in retriever.passages(rows[i]["retrieved"])],
                          max_prompt_tokens=max_prompt_tokens)
            for i in todo
        ]
        progress = Progress(label, "answered", len(prompts), unit="q")
        for i, p in zip(todo, generate_answers(model, tok, prompts, batch_size=batch_size,
                                               max_new_tokens=max_new_tokens, progress=progress)):
            preds[i] = p
        for ex, r, p in zip(examples, rows, preds):
            r.update(prediction=p, em=M.exact_match(p, ex.answers), f1=M.f1(p, ex.answers, f1_rule))
    summary = summarize(rows, recall_name)
    if generator is not None and known_answers:
        summary["answers_reused"] = len(rows) - len(todo)
    return rows, summary


def f1_rule_of(splits_manifest) -> str:
    """The F1 rule of the dataset the questions come from: hotpotqa for HotPotQA, else squad."""
    dataset = (splits_manifest.extra or {}).get("dataset") or {}
    return "hotpotqa" if dataset.get("format") == "hotpotqa" else "squad"


def summarize(rows: list[dict], recall_name: str) -> dict:
    """Means and bootstrap 95% intervals of EM, F1, Recall@k (gold passages or titles found; answer-recall when
    no question is labelled) and answer-recall@k over the rows; NaN rows (unlabelled questions) are left out."""
    out: dict = {"n": len(rows), "recall_metric": recall_name}
    answer_name = "answer_" + recall_name.removeprefix("answer_")
    for key, short in (("em", "em"), ("f1", "f1"), (recall_name, "recall"), (answer_name, "answer_recall")):
        values = [r[key] for r in rows if key in r and not (isinstance(r[key], float) and math.isnan(r[key]))]
        if not values:
            continue
        out[short] = M.mean(values)
        lo, hi = M.bootstrap_ci(values)
        out[f"{short}_ci95"] = [lo, hi]
    return out
