"""The S3 layout has one meaning in the job, the stack and the handlers.

The job's ``batch_image/publish/layout.py`` is the source; ``cdk/constants.py`` reads it;
``handlers/rasterdrop_notify/layout.py`` is a twin because the Lambda code asset
(``handlers/``) cannot import the job's package. Every name both define must agree.
"""

from __future__ import annotations

from batch_image.jobs.run_reports import UNVERSIONED_RUN
from batch_image.publish import layout as job
from cdk import constants as C
from rasterdrop_notify import layout as handlers

SHARED = (
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "PARTIAL_PREFIX",
    "MODELS_PREFIX",
    "TRAINING_PREFIX",
    "NOTIFIED_PREFIX",
    "RUNS_SEGMENT",
    "SUMMARY_JSON",
    "ERROR_JSON",
    "RASTER_SUFFIXES",
    "ASSESSMENTS_PREFIX",
    "ASSESSMENT_SEGMENT",
    "SAMPLE_SUFFIX",
    "VRT_SUFFIXES",
    "INPUT_SUFFIXES",
    "BANDS_FOLDER_SUFFIX",
)


def test_handlers_twin_equals_the_jobs_layout() -> None:
    for name in SHARED:
        assert getattr(handlers, name) == getattr(job, name), name
    assert handlers.MANIFEST_JSON == job.TRAIN_MANIFEST
    assert handlers.NULL_RUN == UNVERSIONED_RUN


def test_every_handler_layout_name_is_checked() -> None:
    public = {n for n in vars(handlers) if n.isupper()}
    assert public == {*SHARED, "MANIFEST_JSON", "NULL_RUN"}


def test_stack_uses_the_jobs_layout() -> None:
    for name in SHARED:
        if name not in (
            "RASTER_SUFFIXES",
            "ASSESSMENT_SEGMENT",
            "SAMPLE_SUFFIX",
            "VRT_SUFFIXES",
            "INPUT_SUFFIXES",
            "BANDS_FOLDER_SUFFIX",
        ):
            assert getattr(C, name) == getattr(job, name), name
    assert C.TIFF_EXTENSIONS == job.RASTER_SUFFIXES
    assert C.VRT_EXTENSIONS == job.VRT_SUFFIXES
    assert C.TRAIN_MANIFEST_NAME == job.TRAIN_MANIFEST
