"""The run graph: steps, their configs and their dependencies; serialised as graph.json."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rag_jobs.errors import ConfigError

GRAPH_FORMAT = 1


def canonical_hash(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no white space)."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StepSpec:
    """One step: an entrypoint (`kind`), its validated config, and named inputs (role -> step name)."""

    name: str
    kind: str
    config: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    gpus: int = 0
    label: str = ""  # for reports, e.g. the strategy row a final evaluate belongs to
    needs: str = "all"  # "all" inputs committed, or "any" (a grid selection survives failed children)

    @property
    def deps(self) -> list[str]:
        return sorted(set(self.inputs.values()))


@dataclass
class Graph:
    run_id: str
    strategy: str
    steps: list[StepSpec]
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ConfigError(f"graph {self.run_id} has duplicate step names")
        known = set(names)
        for s in self.steps:
            missing = [d for d in s.deps if d not in known]
            if missing:
                raise ConfigError(f"step {s.name!r} depends on unknown steps {missing}")
        self.topo_order()  # raises on cycles

    def step(self, name: str) -> StepSpec:
        for s in self.steps:
            if s.name == name:
                return s
        raise ConfigError(f"run {self.run_id} has no step {name!r}; steps: {', '.join(s.name for s in self.steps)}")

    def topo_order(self) -> list[StepSpec]:
        """Steps in dependency order (stable: ties keep declaration order)."""
        done: set[str] = set()
        order: list[StepSpec] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if all(d in done for d in s.deps)]
            if not ready:
                raise ConfigError(f"graph {self.run_id} has a dependency cycle among {[s.name for s in pending]}")
            for s in ready:
                order.append(s)
                done.add(s.name)
            pending = [s for s in pending if s.name not in done]
        return order

    def step_hash(self, name: str) -> str:
        """Hash of a step's kind, its code version, config and (recursively) its inputs: equal hashes = the same
        result. A kind whose version was bumped (a fix that changes results) no longer matches older steps."""
        from rag_jobs.jobs.registry import STEP_KINDS

        s = self.step(name)
        kind = STEP_KINDS.get(s.kind)
        view = getattr(kind.config, "hash_view", None) if kind else None  # e.g. a corpus by content, not path
        return canonical_hash(
            {"kind": s.kind, "version": kind.version if kind else 0, "config": view(s.config) if view else s.config,
             "inputs": {r: self.step_hash(d) for r, d in sorted(s.inputs.items())}}
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": GRAPH_FORMAT,
                "run_id": self.run_id,
                "strategy": self.strategy,
                "settings": self.settings,
                "steps": [asdict(s) for s in self.steps],
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Graph:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ConfigError(f"graph.json is malformed: expected a JSON object, got {type(data).__name__}")
            if data.get("format") != GRAPH_FORMAT:
                raise ConfigError(f"graph.json format {data.get('format')!r} is not {GRAPH_FORMAT}")
            steps = [StepSpec(**s) for s in data["steps"]]
            for s in steps:
                if not (isinstance(s.name, str) and isinstance(s.kind, str) and isinstance(s.config, dict)
                        and isinstance(s.inputs, dict) and all(isinstance(v, str) for v in s.inputs.values())):
                    raise ConfigError(f"graph.json is malformed: step {s.name!r} has a field of the wrong type")
            return cls(run_id=data["run_id"], strategy=data["strategy"], steps=steps, settings=data["settings"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"graph.json is malformed: {exc}") from exc
        except RecursionError:
            raise ConfigError("graph.json is malformed: nested too deeply") from None
