"""The generator prompt of the paper's appendix, and the answer clean-up after decoding."""

from __future__ import annotations

import re
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


_LABEL = re.compile(r"^(?:#+\s*)?answer\s*:\s*", re.IGNORECASE)


def _unlabelled(line: str) -> str:
    """A line without its 'Answer:' / '### Answer:' labels, however many times the model repeated them."""
    line = line.strip()
    while True:
        stripped = _LABEL.sub("", line, count=1)
        if stripped == line:
            return line
        line = stripped.strip()


def clean_answer(generated: str) -> str:
    """The answer in the generated text: its first non-empty line without 'Answer:' labels (repeated or not),
    skipping a preamble line that only leads in to the answer ('Based on the context, the answer is:')."""
    lines = [_unlabelled(line) for line in generated.strip().splitlines()]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines):
        if line.endswith(":") and i + 1 < len(lines):
            continue  # a lead-in; the answer is on a later line
        return line
    return ""
