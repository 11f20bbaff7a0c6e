"""The S3 layout DESIGN.md fixes: prefixes, and the names of the files in them.

The job, the stack (``cdk/constants.py`` imports these) and the handlers
(``handlers/rasterdrop_notify/layout.py``, a twin: the Lambda asset cannot import
the job's package) use these names; ``tests/test_layout_agrees.py`` fails when the
twins drift. Prefixes end in ``/``.
"""

from __future__ import annotations

INPUT_PREFIX = "input/"
OUTPUT_PREFIX = "output/"
PARTIAL_PREFIX = "partial/"
MODELS_PREFIX = "models/"
TRAINING_PREFIX = "training/"
NOTIFIED_PREFIX = "notified/"
RUNS_SEGMENT = "runs/"  # models/<name>/runs/<manifest version>/summary.json

SUMMARY_JSON = "summary.json"  # done-marker of a result (written last)
ERROR_JSON = "error.json"  # failure marker
MODEL_CARD = "model.json"  # done-marker of a model version
MODEL_FILE = "model.skops"
MODEL_POINTER = "current.json"  # models/<name>/current.json
MODEL_RESERVATION = "reserved.json"  # models/<name>/<version>/reserved.json while training
TRAIN_MANIFEST = "manifest.json"
LEASE_NAME = "lease.json"  # partial/<run-id>/lease.json
CHUNKS_SEGMENT = "chunks/"  # partial/<run-id>/chunks/<plan>/<first>-<last>.npz
RASTER_SUFFIXES = (".tif", ".tiff")
ASSESSMENTS_PREFIX = "assessments/"  # assessments/<path>.gpkg: a labelled sample of output/<path>/
ASSESSMENT_SEGMENT = "assessment/"  # output/<path>/assessment/: what the assess job writes
SAMPLE_SUFFIX = ".gpkg"
VRT_SUFFIXES = (".vrt",)  # a GDAL VRT stacking band GeoTIFFs beside it (raster/vrt.py)
INPUT_SUFFIXES = RASTER_SUFFIXES + VRT_SUFFIXES  # what starts a predict job
BANDS_FOLDER_SUFFIX = ".bands"  # input/x/scene.bands/B4.tif: a VRT's band file, not an input
