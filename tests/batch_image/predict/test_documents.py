"""summary.json / error.json are built in one place and serialized key for key as
docs/contracts.md and the code before them had it (same keys, order, rounding)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_image.cli.main import main
from batch_image.errors import InvalidInputError
from batch_image.predict.documents import (
    ErrorDocument,
    InputRef,
    JobRef,
    ModelRef,
    Outputs,
    Summary,
    compute_used,
)
from batch_image.predict.pipeline import predict_file
from tests.batch_image.predict import shapes


def _digits(x: float) -> int:
    text = repr(x)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


@pytest.fixture
def local_run(tmp_path: Path, scene4, model4) -> tuple[dict, dict]:
    out = tmp_path / "out"
    returned = predict_file(scene4[0], model4, out)
    return returned, json.loads((out / "summary.json").read_text())


def test_local_summary_keys_are_todays_and_the_contracts(local_run) -> None:
    returned, written = local_run
    assert written == returned
    assert shapes.structure(written) == shapes.SUMMARY
    shapes.assert_follows_contract(written, "rasterdrop.summary/1")
    assert list(written["versions"])[:4] == ["rasterdrop", "python", "numpy", "scikit-learn"]
    assert written["schema"] == "rasterdrop.summary/1"
    assert written["input"]["path"] is not None and written["input"]["bucket"] is None


def test_local_summary_rounding(local_run) -> None:
    _, doc = local_run
    valid = doc["raster"]["valid_pixels"]
    assert valid > 0
    for c in doc["classes"]:
        assert c["share"] == round(c["pixels"] / valid, 6)
        assert _digits(c["share"]) <= 6 and _digits(c["mean_confidence"]) <= 2
        assert c["area"] == c["pixels"] * doc["raster"]["pixel_area"]  # exact, not rounded
    assert all(_digits(v) <= 3 for v in doc["timings_s"].values())
    assert _digits(doc["peak_rss_mb"]) <= 1
    assert isinstance(doc["raster"]["transform"], list) and len(doc["raster"]["transform"]) == 6


def test_local_error_json_keys(tmp_path: Path, model4: Path) -> None:
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["predict", str(bad), "--model", str(model4), "--out", str(out)]
    )
    assert result.exit_code == 2
    err = json.loads((out / "error.json").read_text())
    assert shapes.structure(err) == shapes.ERROR
    shapes.assert_follows_contract(err, "rasterdrop.error/1")
    assert err["input"] == {"path": str(bad)}
    assert (err["schema"], err["status"], err["category"]) == (
        "rasterdrop.error/1",
        "failed",
        "invalid_input",
    )


def _summary(run_id: str | None = None) -> Summary:
    from batch_image.predict.documents import RasterPart, Timings

    return Summary(
        input=InputRef(bucket="b", key="input/a.tif", size_bytes=10),
        raster=RasterPart(2, 1, 4, "uint16", "EPSG:32633", (1.0,) * 6, 1.0, "metre^2", 2, 0),
        model=ModelRef("m", "v1"),
        classes=(),
        outputs=Outputs(review="review.gpkg"),
        timings=Timings(0.1, 0.2, 0.05, 0.3, 0.6),
        workers=1,
        parallel="windows",
        windows=1,
        resumed_windows=0,
        peak_rss_mb=1.0,
        versions={"rasterdrop": "0"},
        created_at="2026-11-26T09:00:00Z",
        run_id=run_id,
        review=dict.fromkeys(shapes.SUMMARY["review"]),
    )


def test_the_jobs_fields_are_fields_of_the_value_in_todays_order() -> None:
    job = _summary().for_job(
        run_id="r1",
        model_uri="s3://b/models/m/v1/",
        checks=0.12345,
        outputs=Outputs(review="review.gpkg").at(lambda name: f"output/a/{name}"),
    )
    compute = compute_used(4, 2.71828, 5.0)
    doc = job.finished(job_total=2.71828, compute=compute).to_dict()
    structure = shapes.structure(doc)
    # the job stamps "job" (its Batch id and attempt) when it publishes (jobs/predict_job.py)
    expected = {k: v for k, v in shapes.S3_SUMMARY.items() if k not in ("classes[]", "job")}
    expected[""] = [k for k in expected[""] if k != "job"]
    assert structure == expected
    assert doc["run_id"] == "r1"
    assert doc["model"] == {"name": "m", "version": "v1", "uri": "s3://b/models/m/v1/"}
    assert (doc["timings_s"]["checks"], doc["timings_s"]["job_total"]) == (0.123, 2.718)
    assert doc["outputs"]["qgis_style"] == "output/a/classes.qml"
    assert doc["compute"] == {"vcpus": 4, "job_vcpu_s": 10.9, "cpu_s": 5.0, "vcpu_s": 10.9}
    # local documents have none of them
    local = _summary().to_dict()
    assert "run_id" not in local and "uri" not in local["model"] and "compute" not in local
    assert list(local["timings_s"]) == shapes.SUMMARY["timings_s"]


def test_s3_error_json_states_model_and_run_id_even_when_unknown() -> None:
    exc = InvalidInputError("x is bad", code="bad", size=3)
    early = ErrorDocument.of(exc, InputRef(bucket="b", key="k"), JobRef()).to_dict()
    assert list(early)[-2:] == ["model", "run_id"]
    assert (early["model"], early["run_id"]) == (None, None)
    assert early["details"] == {"size": 3}
    known = ErrorDocument.of(exc, InputRef(), JobRef(ModelRef("m", "v", "s3://b/m/v/"), "r"))
    assert shapes.structure(known.to_dict()) == shapes.S3_ERROR
