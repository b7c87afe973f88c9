"""Static safety rules over rag_jobs/ (by AST, with import aliases resolved) and over the deployment files.

rag_jobs/ never: calls torch.load without weights_only=True; passes trust_remote_code=True; unpickles
(pickle / cPickle / dill / cloudpickle / joblib / pandas.read_pickle, numpy.load with allow_pickle); calls
eval or exec; loads YAML with a loader that is not a SafeLoader. helm/ and manifests/ hold no AWS keys.
Each finding is reported as file:line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "rag_jobs"
DEPLOY_DIRS = ("helm", "manifests")

UNPICKLERS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "cPickle.load",
    "cPickle.loads", "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load",
    "pandas.read_pickle", "shelve.open", "torch.serialization._legacy_load",
}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader"}
UNSAFE_YAML_CALLS = {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all"}


class Scanner(ast.NodeVisitor):
    """Collects (line, message) findings of one module; names are resolved through its imports."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted origin ("np" -> "numpy")
        self.findings: list[tuple[int, str]] = []

    # imports (a module-wide map is enough here: the package does not rebind these names)
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        self.generic_visit(node)

    def qualname(self, node: ast.AST) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.aliases.get(node.id, node.id))
        return ".".join(reversed(parts))

    @staticmethod
    def _is_true(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Constant) and node.value is True

    @staticmethod
    def _kw(call: ast.Call, name: str) -> ast.keyword | None:
        return next((k for k in call.keywords if k.arg == name), None)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualname(node.func) or ""
        short = name.rsplit(".", 1)[-1]
        line = node.lineno
        if name in ("torch.load", "torch.serialization.load"):
            kw = self._kw(node, "weights_only")
            if kw is None or not self._is_true(kw.value):
                self.findings.append((line, f"{name}(...) without weights_only=True"))
        if name in UNPICKLERS:
            self.findings.append((line, f"{name}(...) unpickles"))
        if name in ("numpy.load", "numpy.lib.npyio.load"):
            kw = self._kw(node, "allow_pickle")
            if kw is not None and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                self.findings.append((line, f"{name}(..., allow_pickle={ast.unparse(kw.value)})"))
        if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec") and node.func.id not in self.aliases:
            self.findings.append((line, f"{node.func.id}(...)"))
        if name in ("builtins.eval", "builtins.exec"):
            self.findings.append((line, f"{name}(...)"))
        if name in UNSAFE_YAML_CALLS:
            self.findings.append((line, f"{name}(...) (not the SafeLoader)"))
        if name in ("yaml.load", "yaml.load_all"):
            loader = self._kw(node, "Loader")
            value = loader.value if loader is not None else (node.args[1] if len(node.args) > 1 else None)
            loader_name = (self.qualname(value) or "") if value is not None else ""
            if loader_name.rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
                shown = ast.unparse(value) if value is not None else "no Loader"
                self.findings.append((line, f"{name}(...) with {shown} (use yaml.safe_load)"))
        for kw in node.keywords:
            if kw.arg == "trust_remote_code" and not self._false(kw.value):
                self.findings.append((line, f"{short or 'call'}(..., trust_remote_code={ast.unparse(kw.value)})"))
        self.generic_visit(node)

    @staticmethod
    def _false(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value is False

    def visit_Dict(self, node: ast.Dict) -> None:  # kwargs = {"trust_remote_code": True, ...}
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and not self._false(value):
                self.findings.append((node.lineno, f"{{'trust_remote_code': {ast.unparse(value)}}}"))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:  # kwargs["trust_remote_code"] = True
        for target in node.targets:
            if (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant)
                    and target.slice.value == "trust_remote_code" and not self._false(node.value)):
                self.findings.append((node.lineno, f"[...]['trust_remote_code'] = {ast.unparse(node.value)}"))
        self.generic_visit(node)


def scan_source(source: str, filename: str = "<source>") -> list[str]:
    scanner = Scanner()
    scanner.visit(ast.parse(source, filename=filename))
    return [f"{filename}:{line}: {message}" for line, message in sorted(scanner.findings)]


def package_files() -> Iterator[Path]:
    yield from sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


# --- deployment files: literal AWS keys ---------------------------------------------------------------------

ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# `aws_secret_access_key = VALUE` (credentials files), `AWS_SECRET_ACCESS_KEY: VALUE` (env maps)
SECRET_ASSIGNED = re.compile(r"aws_secret_access_key\s*[:=]\s*[\"']?(?P<value>[^\s\"'#]+)", re.IGNORECASE)
# `- name: AWS_SECRET_ACCESS_KEY` followed by `value: ...` (a container's env list)
SECRET_ENV_NAME = re.compile(r"name:\s*[\"']?AWS_SECRET_ACCESS_KEY[\"']?\s*$", re.IGNORECASE)
ENV_VALUE = re.compile(r"^\s*value:\s*[\"']?(?P<value>[^\s\"'#]+)")


def _literal(value: str) -> bool:
    """A value that is a key itself, not a template, a variable, a reference or a placeholder."""
    if value.startswith(("{{", "$", "<", "${")) or value in ("", "null", "~", "|", ">", "''", '""'):
        return False
    return len(value) >= 16 and re.fullmatch(r"[A-Za-z0-9/+=]+", value) is not None


def scan_text_for_keys(text: str, filename: str = "<text>") -> list[str]:
    findings = []
    lines = text.splitlines()
    for i, line in enumerate(lines, start=1):
        for m in ACCESS_KEY_ID.finditer(line):
            findings.append(f"{filename}:{i}: AWS access key id {m.group()[:8]}...")
        for m in SECRET_ASSIGNED.finditer(line):
            if _literal(m.group("value")):
                findings.append(f"{filename}:{i}: literal aws_secret_access_key value")
        if SECRET_ENV_NAME.search(line):
            for j in range(i, min(i + 3, len(lines))):  # the value follows within the same list item
                m = ENV_VALUE.match(lines[j])
                if m and _literal(m.group("value")):
                    findings.append(f"{filename}:{j + 1}: literal AWS_SECRET_ACCESS_KEY env value")
    return findings


def deploy_files() -> Iterator[Path]:
    for name in DEPLOY_DIRS:
        root = REPO / name
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*") if p.is_file())


# --- the rules applied ----------------------------------------------------------------------------------------


def test_the_package_is_found():
    files = list(package_files())
    assert len(files) > 20, files
    assert PACKAGE / "models" / "generator.py" in files


def test_rag_jobs_has_no_unsafe_loading_or_eval():
    findings = []
    for path in package_files():
        findings += scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert not findings, "unsafe calls in rag_jobs/:\n" + "\n".join(findings)


def test_deployment_files_hold_no_aws_keys():
    files = list(deploy_files())
    assert files, f"no files under {DEPLOY_DIRS}"
    findings = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_bytes().decode("latin-1")
        findings += scan_text_for_keys(text, str(path.relative_to(REPO)))
    assert not findings, "literal AWS credentials in deployment files:\n" + "\n".join(findings)


# --- the rules are not vacuous: each catches what it is meant to, and leaves the safe forms alone -----------

UNSAFE_SNIPPETS = [
    ("import torch\ntorch.load('m.pt')\n", "torch.load"),
    ("import torch\ntorch.load('m.pt', weights_only=False)\n", "torch.load"),
    ("import torch as T\nT.load(f, map_location='cpu')\n", "torch.load"),
    ("from torch import load\nload('m.pt')\n", "torch.load"),
    ("import torch\nflag = True\ntorch.load('m.pt', weights_only=flag)\n", "torch.load"),
    ("from transformers import AutoModel\nAutoModel.from_pretrained(p, trust_remote_code=True)\n", "trust_remote_code"),
    ("kwargs = {'trust_remote_code': True}\n", "trust_remote_code"),
    ("kwargs = {}\nkwargs['trust_remote_code'] = True\n", "trust_remote_code"),
    ("import pickle\npickle.load(f)\n", "pickle.load"),
    ("import pickle as pk\npk.loads(b)\n", "pickle.loads"),
    ("from pickle import loads\nloads(b)\n", "pickle.loads"),
    ("import joblib\njoblib.load('x.joblib')\n", "joblib.load"),
    ("import numpy as np\nnp.load('x.npy', allow_pickle=True)\n", "allow_pickle"),
    ("import pandas as pd\npd.read_pickle('x.pkl')\n", "read_pickle"),
    ("eval('1 + 1')\n", "eval"),
    ("exec(code)\n", "exec"),
    ("import builtins\nbuiltins.eval('1')\n", "eval"),
    ("import yaml\nyaml.load(text)\n", "yaml.load"),
    ("import yaml\nyaml.load(text, Loader=yaml.Loader)\n", "yaml.load"),
    ("import yaml\nyaml.load(text, yaml.FullLoader)\n", "yaml.load"),
    ("import yaml\nyaml.unsafe_load(text)\n", "yaml.unsafe_load"),
]
SAFE_SNIPPETS = [
    "import torch\ntorch.load('m.pt', weights_only=True, map_location='cpu')\n",
    "from transformers import AutoModel\nAutoModel.from_pretrained(p, trust_remote_code=False)\n",
    "kwargs = {'trust_remote_code': False}\n",
    "import numpy as np\nnp.load('x.npy', allow_pickle=False)\nnp.load('y.npy', mmap_mode='r')\n",
    "model.eval()\nsession.exec(stmt)\n",
    "import yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)\nyaml.load(t, yaml.CSafeLoader)\n",
    "from safetensors.torch import load_file\nload_file('m.safetensors')\n",
    "import json\njson.loads('{}')\n",
]


@pytest.mark.parametrize(("source", "needle"), UNSAFE_SNIPPETS)
def test_each_rule_flags_its_unsafe_form(source, needle):
    findings = scan_source(source, "snippet.py")
    assert findings and any(needle in f for f in findings), findings
    assert all(re.match(r"snippet\.py:\d+: ", f) for f in findings), findings


@pytest.mark.parametrize("source", SAFE_SNIPPETS)
def test_safe_forms_pass(source):
    assert scan_source(source, "snippet.py") == []


def test_key_rules_flag_literal_keys_and_leave_references_alone():
    fake_id = "AKIA" + "Q" * 16  # built here so this file holds no key-shaped literal
    fake_secret = "x" * 20 + "/" + "Y" * 19
    flagged = {
        "id in a value": f"env:\n  AWS_ACCESS_KEY_ID: {fake_id}\n",
        "secret in a credentials file": f"[default]\naws_secret_access_key = {fake_secret}\n",
        "secret in an env map": f"data:\n  AWS_SECRET_ACCESS_KEY: \"{fake_secret}\"\n",
        "secret in an env list": f"env:\n  - name: AWS_SECRET_ACCESS_KEY\n    value: {fake_secret}\n",
    }
    for label, text in flagged.items():
        findings = scan_text_for_keys(text, "values.yaml")
        assert findings and all(f.startswith("values.yaml:") for f in findings), (label, findings)
    clean = (
        "env:\n  - name: AWS_SECRET_ACCESS_KEY\n    valueFrom:\n      secretKeyRef: {name: s3, key: secret}\n"
        "  AWS_SECRET_ACCESS_KEY: {{ .Values.s3.secret | quote }}\n"
        "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}\n"
        "aws_secret_access_key = <your secret key>\n"
        "# annotations: eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/rag-jobs-store\n"
    )
    assert scan_text_for_keys(clean, "values.yaml") == []
