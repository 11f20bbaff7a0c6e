"""The job image: pins agree with the repo's, the Dockerfile keeps its promises, and
``batch_image/requirements.txt`` alone is enough to run the package (no Docker here:
a fresh venv with only those requirements stands in for the image)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_model, make_scene

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "batch_image"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not an exact pin"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", line)[0]).lower())
    return names


def test_image_constraints_agree_with_the_repo_constraints() -> None:
    image = _pins(IMAGE / "constraints.txt")
    repo = _pins(ROOT / "constraints.txt")
    differ = {n: (v, repo.get(n)) for n, v in image.items() if repo.get(n) != v}
    assert differ == {}, "batch_image/constraints.txt disagrees with constraints.txt"
    missing = _requirement_names(IMAGE / "requirements.txt") - set(image)
    assert missing == set(), f"image requirements without an exact pin: {missing}"


def test_dockerfile_is_slim_pinned_non_root_with_gdal_settings() -> None:
    text = (IMAGE / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm\b", text, re.M)
    assert "-r requirements.txt -c constraints.txt" in text
    assert "COPY requirements.txt constraints.txt" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    for setting in (
        "GDAL_CACHEMAX=",
        "GDAL_NUM_THREADS=",
        "GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS=",
        "RASTERDROP_LOG_FORMAT=json",
    ):
        assert setting in text, setting
    assert 'ENTRYPOINT ["python", "-m", "batch_image"]' in text
    # LightGBM needs the OpenMP runtime on the slim base
    assert re.search(r"apt-get install --yes --no-install-recommends libgomp1\b", text)
    ignore = (IMAGE / ".dockerignore").read_text()
    assert "__pycache__" in ignore


def test_package_imports_nothing_from_outside_itself() -> None:
    """The image holds batch_image/ only: no imports of tests/, handlers/, cdk/."""
    offenders = []
    for path in IMAGE.rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import)\s+(tests|handlers|cdk|sandbox|bench|app)\b", line):
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []


@pytest.mark.slow
def test_requirements_alone_run_the_package(tmp_path: Path) -> None:
    # Given a fresh venv with only the image's requirements, pinned like the image
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(IMAGE / "requirements.txt"),
            "-c",
            str(IMAGE / "constraints.txt"),
        ],
        check=True,
        timeout=600,
    )
    app = tmp_path / "app"
    shutil.copytree(IMAGE, app / "batch_image", ignore=shutil.ignore_patterns("__pycache__"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(py), *args],
            cwd=app,
            capture_output=True,
            text=True,
            timeout=300,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )

    # Then the entrypoint's commands start
    top = run("-m", "batch_image", "--help")
    assert top.returncode == 0, top.stderr
    assert "predict" in top.stdout
    sub = run("-m", "batch_image", "predict", "--help")
    assert sub.returncode == 0, sub.stderr
    assert "--bucket" in sub.stdout
    # and every module of the package imports (S3 mode included)
    imports = run(
        "-c",
        "import importlib, pkgutil, batch_image\n"
        "for m in pkgutil.iter_modules(batch_image.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('batch_image.' + m.name)\n"
        "import boto3, rasterio, sklearn, skops, rio_cogeo, lightgbm, xgboost\n"
        "print('ok')",
    )
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.strip() == "ok"
    # and a prediction runs end to end (COG writing, skops loading, preview)
    scene, truth = make_scene(tmp_path)
    model = make_model(tmp_path, scene, truth)
    out = tmp_path / "out"
    done = run("-m", "batch_image", "predict", str(scene), "--model", str(model), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "summary.json").is_file()
    assert (out / "preview.png").is_file()
