"""The bucket layout DESIGN.md fixes: prefixes and report names, in one place.

The job's ``batch_image/publish/layout.py`` is the twin (the Lambda asset cannot import
the job's package; ``cdk/constants.py`` reads the job's); ``tests/test_layout_agrees.py``
fails when the two drift. ``input/`` and ``output/`` are only the
defaults of ``RASTERDROP_INPUT_PREFIX`` / ``RASTERDROP_OUTPUT_PREFIX``; the other prefixes
are not configurable.
"""

from __future__ import annotations

INPUT_PREFIX = "input/"
OUTPUT_PREFIX = "output/"
PARTIAL_PREFIX = "partial/"
MODELS_PREFIX = "models/"
TRAINING_PREFIX = "training/"
NOTIFIED_PREFIX = "notified/"
#: ``models/<name>/runs/<manifest version>/``: where the train job writes its run report.
RUNS_SEGMENT = "runs/"
#: Run directory name of a manifest that has no version id (unversioned bucket).
NULL_RUN = "null"
#: ``training/<name>/manifest.json``: the upload that starts a train job.
MANIFEST_JSON = "manifest.json"
SUMMARY_JSON = "summary.json"
ERROR_JSON = "error.json"
#: Suffixes of an input raster, compared case-insensitively.
RASTER_SUFFIXES = (".tif", ".tiff")
#: ``assessments/<path>.gpkg`` (a labelled accuracy sample of ``output/<path>/``) starts an
#: assess job, which writes ``output/<path>/assessment/``.
ASSESSMENTS_PREFIX = "assessments/"
ASSESSMENT_SEGMENT = "assessment/"
SAMPLE_SUFFIX = ".gpkg"
#: A GDAL VRT stacking band GeoTIFFs uploaded beside it.
VRT_SUFFIXES = (".vrt",)
#: Every suffix of a key that starts a predict job.
INPUT_SUFFIXES = RASTER_SUFFIXES + VRT_SUFFIXES
#: ``input/x/scene.bands/B4.tif``: a VRT's band file; its job refuses it and nobody is told.
BANDS_FOLDER_SUFFIX = ".bands"
