"""rasterdrop's Batch job: per-pixel prediction and training on GeoTIFFs."""

__version__ = "0.1.0"
