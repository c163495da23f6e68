"""The image's build context: the Dockerfile and a wheelhouse (this project's own wheel, made from
the installed package, plus every dependency as a wheel for the image's Python and CPU), and the
digest that tells whether an image built earlier is still up to date."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

DIST = "kafka-sandbox"
PACKAGE_DIR = Path(__file__).resolve().parent.parent          # the installed `sandbox` package
DOCKERFILE = Path(__file__).resolve().parent / "Dockerfile"   # the same text as compose/Dockerfile
_SKIP = {"__pycache__"}
# glibc of Debian bookworm (the slim Python images) is 2.36: wheels for any older manylinux fit
_MANYLINUX = ["manylinux1", "manylinux2010", "manylinux2014"] + [f"manylinux_2_{n}" for n in range(5, 37)]


class WheelhouseError(RuntimeError):
    """A wheel could not be made or downloaded; the message names the package and the fix."""


def _package_files() -> list[Path]:
    files = []
    for p in sorted(PACKAGE_DIR.rglob("*")):
        if p.is_file() and not (_SKIP & set(p.relative_to(PACKAGE_DIR).parts)) and p.suffix not in (".pyc", ".pyo"):
            files.append(p)
    return files


def runtime_requirements() -> list[str]:
    """The project's dependencies without extras (tests, benchmarks)."""
    reqs = md.distribution(DIST).requires or []
    return sorted(r for r in reqs if "extra ==" not in r)


def version() -> str:
    return md.version(DIST)


def source_digest(base_image: str) -> str:
    """Changes whenever the image would come out different: the package's files, its dependencies,
    the Dockerfile and the base image's name."""
    h = hashlib.sha256()
    for part in (base_image, version(), *runtime_requirements(), DOCKERFILE.read_text(encoding="utf-8")):
        h.update(part.encode() + b"\0")
    for p in _package_files():
        h.update(str(p.relative_to(PACKAGE_DIR)).replace("\\", "/").encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def project_wheel(dest: Path) -> Path:
    """A py3-none-any wheel of the installed package (editable or not): its files plus a dist-info
    written from the installed metadata. No build backend, no network."""
    dist = md.distribution(DIST)
    ver = dist.version
    info = f"{DIST.replace('-', '_')}-{ver}.dist-info"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{DIST.replace('-', '_')}-{ver}-py3-none-any.whl"
    record: list[str] = []
    metadata = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {ver}\n"
    extra = {
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: sandbox\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": (dist.read_text("entry_points.txt") or "").encode(),
        f"{info}/top_level.txt": b"sandbox\n",
    }
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for p in _package_files():
            name = "sandbox/" + str(p.relative_to(PACKAGE_DIR)).replace("\\", "/")
            data = p.read_bytes()
            z.writestr(name, data)
            record.append(_record_line(name, data))
        for name, data in extra.items():
            z.writestr(name, data)
            record.append(_record_line(name, data))
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return target


def _pip_platforms(arch: str) -> list[str]:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    return [f"{tag}_{arch}" for tag in _MANYLINUX if not (arch == "aarch64" and tag in ("manylinux1", "manylinux2010"))]


def dependency_wheels(dest: Path, python_version: str, arch: str, *, timeout: float = 600.0) -> list[Path]:
    """Download every dependency as a binary wheel for CPython `python_version` ("3.11") on Linux
    `arch`, through pip and its configuration (index, proxy, cache)."""
    dest.mkdir(parents=True, exist_ok=True)
    abi = "cp" + python_version.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
           "--abi", abi, "--abi", "abi3", "--abi", "none", "-d", str(dest)]
    for plat in _pip_platforms(arch):
        cmd += ["--platform", plat]
    cmd += runtime_requirements()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WheelhouseError(f"downloading the image's wheels took over {timeout:.0f} s; check pip's "
                              f"access to the package index (proxy settings in pip.conf)") from None
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        why = lines[-1] if lines else f"pip exited with {out.returncode}"
        raise WheelhouseError(f"could not download the wheels the image needs for Python {python_version} "
                              f"on {arch}: {why.strip()}; check pip's access to the package index "
                              f"(proxy settings in pip.conf)")
    return sorted(dest.glob("*.whl"))


def write_context(dest: Path, python_version: str, arch: str) -> Path:
    """The whole build context in `dest`: Dockerfile and wheels/ (project + dependencies)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DOCKERFILE, dest / "Dockerfile")
    wheels = dest / "wheels"
    dependency_wheels(wheels, python_version, arch)
    project_wheel(wheels)
    return dest


PY_VERSION = re.compile(r"^(\d+)\.(\d+)")


def parse_python_version(text: str) -> str:
    """'Python 3.11.2' or '3.11.2' -> '3.11'."""
    m = PY_VERSION.search(text.strip().removeprefix("Python").strip())
    if not m:
        raise WheelhouseError(f"the base image's python3 printed {text.strip()!r}, not a version")
    return f"{m.group(1)}.{m.group(2)}"
