"""Context labels against an external corpus, derived from what a dataset says about each question.

HotPotQA: a chunk is gold when its title is a supporting-fact title and it contains one of that title's
supporting sentences (NFKC and white space normalised containment). Those chunks are the ranking loss's
positives. When no chunk of a supporting title contains one (a sentence cut by the chunking), every chunk of
that title counts for recall, but none is a positive: a title-only match would make every chunk of an article
a positive.
PopQA: the chunks of the subject's page count for recall; those holding one of the answers are positives.
Recall@k counts gold titles found (one group per title), so the chunking does not change its denominator.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence

from rag_jobs.corpus.shards import CorpusShards, norm_title
from rag_jobs.data.records import Example


def norm_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def derive_labels(examples: Sequence[Example], corpus: CorpusShards, fmt: str) -> tuple[list[Example], dict]:
    """The examples with `gold_passage_ids` (positives) and `gold_groups` (recall) over `corpus`, and the counts
    recorded in the manifest: questions matched by sentence (or answer), by title only, and not at all."""
    titles = {t for ex in examples for t in ex.gold_titles}
    chunks: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for p in corpus.with_titles(titles):
        chunks[norm_title(p.title)].append((p.id, norm_text(p.text)))
    counts: Counter[str] = Counter()
    by_text = "answer" if fmt == "popqa" else "sentence"
    out = []
    for ex in examples:
        positives: list[str] = []
        groups: list[tuple[str, ...]] = []
        for title in ex.gold_titles:
            of_title = chunks.get(norm_title(title), [])
            if not of_title:
                counts["gold_titles_not_in_corpus"] += 1
                continue
            if fmt == "popqa":
                needles = [norm_text(a) for a in ex.answers]
                matched = [cid for cid, text in of_title if any(_contains_word(text, n) for n in needles)]
                group = [cid for cid, _ in of_title]
            else:
                needles = [norm_text(s) for t, s in ex.support if norm_title(t) == norm_title(title)]
                matched = [cid for cid, text in of_title if any(n and n in text for n in needles)]
                group = matched or [cid for cid, _ in of_title]
            positives += [c for c in matched if c not in positives]
            groups.append(tuple(group))
        counts["gold_titles"] += len(ex.gold_titles)
        if positives:
            counts[f"questions_matched_by_{by_text}"] += 1
        elif groups:
            counts["questions_matched_by_title_only"] += 1
        else:
            counts["questions_unmatched"] += 1
        out.append(dataclasses.replace(ex, gold_passage_ids=tuple(positives), gold_groups=tuple(groups)))
    result = {f"questions_matched_by_{by_text}": 0, "questions_matched_by_title_only": 0, "questions_unmatched": 0,
              "gold_titles": 0, "gold_titles_not_in_corpus": 0, **counts}
    return out, result


def _contains_word(text: str, needle: str) -> bool:
    """`needle` occurs in `text` as whole words (case-folded): 'pol' is not found in 'politician'."""
    if not needle:
        return False
    t, n = text.casefold(), needle.casefold()
    start = t.find(n)
    while start >= 0:
        end = start + len(n)
        if (start == 0 or not t[start - 1].isalnum()) and (end == len(t) or not t[end].isalnum()):
            return True
        start = t.find(n, start + 1)
    return False
