"""Export one strategy of a finished run as a bundle that loads without rag-jobs, and answer questions with it.

    BUNDLE/
      bundle.json        what it is: strategy, run, metrics, learning rates, the prompt, the index reference
      embedder/          one sentence-transformers model (Router): encode_query = the fine-tuned encoder,
                         encode_document = the frozen base the index was built with
      generator/         the base generator's full-precision weights and tokenizer (the aliases are local
                         conversions of a quantized file, not the hub's weights: they are shipped)
      adapter/           the peft LoRA adapter (for peft and vLLM --enable-lora), when the strategy trained it
      generator-merged/  with --merge: the adapter merged into the base in 16-bit (never into 4-bit weights)
      README.md          the model card

A bundle is a local folder or a store prefix (`--out s3://bucket/bundles/x`): bundle.json lists every other
file's size and sha256 and is written last, so a half-published bundle is never read; `open_bundle` fetches a
store bundle into the cache (verified) before it is loaded.

Document vectors are frozen in every strategy: re-encoding the corpus with the tuned encoder would silently
change the retriever, so the document route is the base encoder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from rag_jobs.artifacts import StepRef, fetch_manifest, read_selected
from rag_jobs.artifacts.layout import ADAPTER_DIR, EMBEDDER_DIR
from rag_jobs.core.prompts import INSTRUCTION, TEMPLATE
from rag_jobs.errors import ConfigError, DataError

BUNDLE_FORMAT = 1
# The packaged aliases' hub models (the document route is a copy of these weights).
HUB_NAMES = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
BUNDLE_FILE = "bundle.json"


@dataclass
class Exported:
    """What a strategy's final evaluate step used: its step, metrics, the models' folders and the index."""

    label: str
    evaluate: object  # Manifest
    embedder_dir: Path | None
    embedder_base: str
    adapter_dir: Path | None
    generator: str
    index: object  # Manifest of the index step


def _committed(store, run_id: str, step: str):
    """A committed step's manifest; a selection step stands for the grid child it selected."""
    manifest = read_selected(store, StepRef(run_id, step))
    if manifest is None:
        raise DataError(f"step {step!r} of run {run_id!r} is not committed: the run has not finished")
    return manifest


def _evaluate_step(graph, strategy: str | None):
    steps = [s for s in graph.steps if s.kind == "evaluate"]
    if strategy is None:
        if len(steps) == 1:
            return steps[0]
        raise ConfigError(f"run {graph.run_id} evaluates {len(steps)} strategies: pick one with --strategy "
                          f"({', '.join(s.label or s.name for s in steps)})")
    for s in steps:
        if strategy in (s.label, s.name, s.name.removeprefix("evaluate-")) or (
                strategy == graph.strategy and s.name == "evaluate"):
            return s
    raise ConfigError(f"--strategy {strategy!r} is not a strategy of run {graph.run_id}: "
                      f"{', '.join(s.label or s.name for s in steps)}")


def resolve(store, graph, strategy: str | None, work: Path) -> Exported:
    """Fetch what one strategy's evaluate step used into `work`."""
    spec = _evaluate_step(graph, strategy)
    evaluate = _committed(store, graph.run_id, spec.name)
    index = _committed(store, graph.run_id, spec.inputs["index"])
    index_dir = fetch_manifest(store, index, work / "index", files=["index_meta.json"])
    base = json.loads((index_dir / "index_meta.json").read_text())["embedder"]
    embedder_dir = adapter_dir = None
    if "embedder" in spec.inputs:
        m = _committed(store, graph.run_id, spec.inputs["embedder"])
        embedder_dir = fetch_manifest(store, m, work / "embedder") / EMBEDDER_DIR
    if "generator" in spec.inputs:
        m = _committed(store, graph.run_id, spec.inputs["generator"])
        adapter_dir = fetch_manifest(store, m, work / "generator") / ADAPTER_DIR
    generator = str(spec.config.get("generator", "smollm2-135m"))
    return Exported(spec.label or spec.name, evaluate, embedder_dir, base, adapter_dir, generator, index)


def export(store, graph, out: Path, *, strategy: str | None = None, merge: bool = False,
           work: Path | None = None) -> dict:
    """Write the bundle of one strategy of a finished run into `out` (a local folder); its description."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty: export into a new folder")
    staging = out.parent / f".{out.name}.partial"  # renamed to `out` when complete: no half bundle is visible
    shutil.rmtree(staging, ignore_errors=True)
    try:
        desc = _export(store, graph, staging, strategy=strategy, merge=merge, work=work)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        _move_into(staging, out)
    else:
        staging.rename(out)
    desc["bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return desc


def export_to(store, graph, out: str, *, strategy: str | None = None, merge: bool = False,
              work: Path | None = None) -> dict:
    """Export into a local folder, or into a store prefix (`s3://...`, `file://...`): staged locally, then
    uploaded with bundle.json last."""
    import tempfile

    if "://" not in out:
        return export(store, graph, Path(out), strategy=strategy, merge=merge, work=work)
    from rag_jobs.artifacts import open_store

    target = open_store(out)
    if target.exists(BUNDLE_FILE):
        raise ConfigError(f"--out {out} already holds a bundle: export into a new prefix")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        desc = export(store, graph, Path(tmp) / "bundle", strategy=strategy, merge=merge, work=work)
        publish(Path(tmp) / "bundle", target)
    return desc


def publish(folder: Path, target) -> None:
    """Upload a bundle folder into a store: every file, then bundle.json (its commit marker)."""
    desc = read_bundle(folder)
    for rel in desc["files"]:
        target.put_file(rel, folder / rel)
    target.put_file(BUNDLE_FILE, folder / BUNDLE_FILE)


def _store_of(spec: str):
    """The store of a bundle URI, or None for a local folder (a path, or file:// holding bundle.json)."""
    from rag_jobs.artifacts import open_store

    local = spec[len("file://"):] if spec.startswith("file://") else spec
    if "://" not in local:
        return None
    return open_store(spec)


def bundle_description(spec: str) -> dict:
    """bundle.json of a bundle folder or store prefix, without fetching the models."""
    from rag_jobs.errors import StoreError

    store = _store_of(spec)
    if store is None:
        return read_bundle(Path(spec[len("file://"):] if spec.startswith("file://") else spec))
    try:
        raw = store.get_bytes(BUNDLE_FILE)
    except StoreError as exc:  # not there (ArtifactNotFound) or not readable
        raise DataError(f"{spec} holds no rag-jobs bundle ({BUNDLE_FILE}: {exc.one_line()})") from exc
    try:
        desc = json.loads(raw)
    except ValueError as exc:
        raise DataError(f"{spec}/{BUNDLE_FILE} is not JSON: {exc}") from exc
    return _checked(desc, f"{spec}/{BUNDLE_FILE}")


def open_bundle(spec: str, cache: Path | None = None) -> Path:
    """A bundle folder as given, or a store bundle fetched once into the cache and verified file by file."""
    from rag_jobs.artifacts.digests import file_sha256, hash_file, remember_sha256
    from rag_jobs.artifacts.keys import validate_key
    from rag_jobs.errors import IntegrityError, StoreError

    store = _store_of(spec)
    if store is None:
        folder = Path(spec[len("file://"):] if spec.startswith("file://") else spec)
        read_bundle(folder)
        return folder
    desc = bundle_description(spec)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.rstrip("/"))[-80:]
    folder = (Path(cache) if cache is not None else _cache_root()) / "bundles" / safe
    for rel, entry in desc["files"].items():
        try:
            validate_key(rel, what="bundle file")
        except StoreError as exc:
            raise IntegrityError(f"{spec}/{BUNDLE_FILE} is corrupt: {exc.one_line()}") from exc
        target = folder.joinpath(*rel.split("/"))
        if target.is_file() and target.stat().st_size == entry["size"] and file_sha256(target) == entry["sha256"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".partial")
        store.get_file(rel, tmp)
        digest = hash_file(tmp)
        if tmp.stat().st_size != entry["size"] or digest != entry["sha256"]:
            tmp.unlink()
            raise IntegrityError(f"{spec}/{rel} does not match {BUNDLE_FILE} (size or sha256)")
        tmp.replace(target)
        remember_sha256(target, digest)
    (folder / BUNDLE_FILE).write_text(json.dumps(desc, indent=2))  # last: the cached copy is complete
    return folder


def _cache_root() -> Path:
    import os

    return Path(os.environ.get("RAG_JOBS_CACHE") or Path.home() / ".cache" / "rag-jobs")


def _file_list(folder: Path) -> dict:
    from rag_jobs.artifacts.digests import file_sha256

    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != BUNDLE_FILE}


def _export(store, graph, staging: Path, *, strategy: str | None, merge: bool, work: Path | None) -> dict:
    import tempfile

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Router

    from rag_jobs.config import step_config
    from rag_jobs.index.service.source import content_id
    from rag_jobs.models.embedder import resolve_embedder_path
    from rag_jobs.models.generator import resolve_generator_path

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        got = resolve(store, graph, strategy, Path(tmp))
        staging.mkdir(parents=True)
        base = SentenceTransformer(resolve_embedder_path(got.embedder_base), device="cpu")
        if got.embedder_dir is not None:
            tuned = SentenceTransformer(str(got.embedder_dir), device="cpu")
            router = Router.for_query_document(query_modules=list(tuned), document_modules=list(base))
            SentenceTransformer(modules=[router], device="cpu").save(str(staging / "embedder"))
        else:
            base.save(str(staging / "embedder"))  # the strategy kept the base encoder for both
        gen_path = Path(resolve_generator_path(got.generator))
        if gen_path.is_dir():
            shutil.copytree(gen_path, staging / "generator")
            generator_ref = "generator"
        else:
            generator_ref = got.generator  # a hub name: loaded from the hub
        if got.adapter_dir is not None:
            shutil.copytree(got.adapter_dir, staging / "adapter")
            cfg_path = staging / "adapter" / "adapter_config.json"
            adapter_cfg = json.loads(cfg_path.read_text())
            adapter_cfg["base_model_name_or_path"] = generator_ref
            cfg_path.write_text(json.dumps(adapter_cfg, indent=2))
            if merge:
                from peft import PeftModel
                from transformers import AutoModelForCausalLM, AutoTokenizer

                src = staging / "generator" if generator_ref == "generator" else generator_ref
                model = AutoModelForCausalLM.from_pretrained(src, torch_dtype=torch.float32)
                merged = PeftModel.from_pretrained(model, str(staging / "adapter")).merge_and_unload()
                merged.to(torch.float16).save_pretrained(staging / "generator-merged", safe_serialization=True)
                AutoTokenizer.from_pretrained(src).save_pretrained(staging / "generator-merged")
        ev = got.evaluate
        metrics = {k: ev.metrics.get(k) for k in ("em", "f1", "recall", "answer_recall", "n", "split")}
        index_meta = json.loads((Path(tmp) / "index" / "index_meta.json").read_text())
        cfg = step_config("evaluate", graph.step(ev.step).config)
        desc = {
            "format": BUNDLE_FORMAT,
            "strategy": got.label,
            "run": {"store": store.uri, "run_id": graph.run_id, "evaluate": ev.step},
            "metrics": metrics,
            "learning_rates": _learning_rates(store, graph, ev),
            "embedder": {"query": "fine-tuned" if got.embedder_dir else "base", "document": got.embedder_base,
                         "hub": HUB_NAMES.get(got.embedder_base, got.embedder_base)},
            "generator": {"base": generator_ref, "adapter": "adapter" if got.adapter_dir else None,
                          "merged": "generator-merged" if merge and got.adapter_dir else None,
                          "source": got.generator},
            "prompt": {"instruction": INSTRUCTION, "template": TEMPLATE, "separator": "\n\n",
                       "chat_template": True, "k": cfg.k, "max_prompt_tokens": cfg.max_prompt_tokens,
                       "max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size},
            "index": {"uri": f"{store.uri.rstrip('/')}/runs/{graph.run_id}/{got.index.step}",
                      "attempt": got.index.attempt, "content_id": content_id(index_meta),
                      "factory": index_meta.get("factory"), "size": index_meta.get("size"),
                      "dim": index_meta.get("dim")},
        }
        (staging / "README.md").write_text(model_card(desc))
        desc["files"] = _file_list(staging)
        (staging / BUNDLE_FILE).write_text(json.dumps(desc, indent=2))
    return desc


def _move_into(staging: Path, out: Path) -> None:
    for p in staging.iterdir():
        p.rename(out / p.name)
    staging.rmdir()


def _learning_rates(store, graph, ev) -> dict:
    out = {}
    spec = graph.step(ev.step)
    for role in ("embedder", "generator"):
        if role in spec.inputs:
            m = _committed(store, graph.run_id, spec.inputs[role])
            for key in ("lr", "embed_lr", "gen_lr"):
                if isinstance(m.metrics.get(key), (int, float)):
                    out[f"{role}.{key}" if key == "lr" else key] = m.metrics[key]
    return out


def model_card(desc: dict) -> str:
    m = desc["metrics"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}"

    lrs = ", ".join(f"{k} = {v:g}" for k, v in desc["learning_rates"].items() if isinstance(v, (int, float)))
    lrs = lrs or "none (not trained)"
    gen = desc["generator"]
    load_gen = (f'base = AutoModelForCausalLM.from_pretrained("BUNDLE/{gen["base"]}")' if gen["base"] == "generator"
                else f'base = AutoModelForCausalLM.from_pretrained("{gen["base"]}")')
    adapter = "model = base  # the generator was not trained"
    if gen["adapter"]:
        adapter = ('model = PeftModel.from_pretrained(base, "BUNDLE/adapter")  # peft; vLLM: --enable-lora '
                   '--lora-modules rag=BUNDLE/adapter')
    return f"""# rag-jobs bundle: {desc["strategy"]}

A retrieval-augmented generation pipeline fine-tuned with rag-jobs (strategy **{desc["strategy"]}**, run
`{desc["run"]["run_id"]}`), exported with `rag-jobs export`.

| Strategy | EM | F1 | Recall@5 | n ({m.get("split") or "test"}) |
|---|---|---|---|---|
| {desc["strategy"]} | {pct(m.get("em"))} | {pct(m.get("f1"))} | {pct(m.get("recall"))} | {m.get("n")} |

Learning rates: {lrs}.

## Load it (no rag-jobs needed)

```python
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

embedder = SentenceTransformer("BUNDLE/embedder")
q = embedder.encode_query(["who wrote ...?"], normalize_embeddings=True)     # the fine-tuned query encoder
d = embedder.encode_document(["a passage"], normalize_embeddings=True)      # the frozen base: the index's
{load_gen}
{adapter}
tokenizer = AutoTokenizer.from_pretrained("BUNDLE/{gen["base"] if gen["base"] == "generator" else "adapter"}")
```

Documents are encoded by the base encoder in every strategy (the index was built with it and its vectors
stay frozen): do not re-encode the corpus with the query route.

## Prompt

The paper's prompt (bundle.json `prompt`), with the top {desc["prompt"]["k"]} passages joined by a blank line, wrapped
in the tokenizer's chat template, greedy decoding of at most {desc["prompt"]["max_new_tokens"]} tokens:

```
{desc["prompt"]["template"].format(instruction=desc["prompt"]["instruction"], context="{{passages}}",
                                   question="{{question}}")}
```

## Index

`{desc["index"]["uri"]}` (content id `{desc["index"]["content_id"]}`, {desc["index"]["size"]} passages,
FAISS `{desc["index"]["factory"]}`): `rag-jobs serve --index <that>` serves it; `rag-jobs ask BUNDLE "question"`
answers with it.
"""


def read_bundle(folder: Path) -> dict:
    path = Path(folder) / BUNDLE_FILE
    if not path.is_file():
        raise DataError(f"{folder} is not a bundle of rag-jobs export (no {BUNDLE_FILE})")
    try:
        desc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder} is not a rag-jobs bundle ({BUNDLE_FILE}: {exc})") from exc
    return _checked(desc, str(path))


def _checked(desc, path: str) -> dict:
    if not isinstance(desc, dict) or desc.get("format") != BUNDLE_FORMAT:
        got = desc.get("format") if isinstance(desc, dict) else None
        raise DataError(f"{path}: bundle format {got!r}, this rag-jobs reads {BUNDLE_FORMAT}")
    missing = [k for k in ("strategy", "files", "prompt", "index", "generator") if k not in desc]
    if missing:
        raise DataError(f"{path}: not a complete bundle description (no {missing[0]!r})")
    return desc


class Pipeline:
    """A bundle loaded for answering: the tuned query encoder, the run's index, the tuned generator.

    `retriever` is an index already loaded (the service's); it must be the bundle's index (same content id).
    """

    def __init__(self, folder: Path, *, device: str = "cpu", retriever=None):
        from sentence_transformers import SentenceTransformer

        from rag_jobs.index.service.source import IndexSource
        from rag_jobs.models.device import resolve_device
        from rag_jobs.models.generation import format_prompt
        from rag_jobs.models.generator import load_generator

        device = resolve_device(device)
        self.folder = Path(folder)
        self.desc = read_bundle(self.folder)
        self._format = format_prompt
        self.embedder = SentenceTransformer(str(self.folder / "embedder"), device=device)
        self.retriever = retriever if retriever is not None else IndexSource(self.desc["index"]["uri"]).load()
        gen = self.desc["generator"]
        base = str(self.folder / gen["base"]) if gen["base"] == "generator" else gen["base"]
        adapter = str(self.folder / gen["adapter"]) if gen["adapter"] else None
        self.generator, self.tokenizer = load_generator(base, device=device, quantization="none", adapter_dir=adapter)
        self.generator.eval()

    def ask(self, questions: list[str], k: int | None = None) -> list[dict]:
        from rag_jobs.models.generation import generate_answers

        p = self.desc["prompt"]
        k = k or p["k"]
        queries = self.embedder.encode_query(questions, normalize_embeddings=True, convert_to_numpy=True)
        hits = self.retriever.search(queries, k)
        prompts, sources = [], []
        for q, ids, scores in zip(questions, hits.ids, hits.scores):
            passages = self.retriever.passages(ids)
            prompts.append(self._format(self.tokenizer, q, [x.content for x in passages],
                                        max_prompt_tokens=p["max_prompt_tokens"]))
            sources.append([{"id": x.id, "title": x.title, "score": float(s)} for x, s in zip(passages, scores)])
        answers = generate_answers(self.generator, self.tokenizer, prompts, max_new_tokens=p["max_new_tokens"],
                                   batch_size=p.get("batch_size", 8))
        return [{"question": q, "answer": a, "sources": s} for q, a, s in zip(questions, answers, sources)]
