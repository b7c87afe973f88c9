"""The generator prompt of the paper's appendix, and the answer clean-up after decoding."""

from __future__ import annotations

from collections.abc import Sequence

INSTRUCTION = (
    "You are a helpful general knowledge expert. Answer the following question using the relevant "
    "context. Use as few words as possible."
)

TEMPLATE = "{instruction}\n### Context:\n{context}\n### Question:\n{question}\n### Answer:\n"


def build_prompt(question: str, contexts: Sequence[str], *, separator: str = "\n\n") -> str:
    """The paper's prompt with the retrieved documents concatenated as context."""
    context = separator.join(c.strip() for c in contexts)
    return TEMPLATE.format(instruction=INSTRUCTION, context=context, question=question.strip())


def clean_answer(generated: str) -> str:
    """First non-empty line of the generated text, without a repeated 'Answer:' label."""
    for line in generated.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        for label in ("### Answer:", "Answer:"):
            if line.startswith(label):
                line = line[len(label):].strip()
        if line:
            return line
    return ""
