"""Vector label files as people have them: which formats, and which files travel together.

GeoPackage (``.gpkg``), GeoJSON (``.geojson``/``.json``) and FlatGeobuf (``.fgb``) are
one file each. A Shapefile is a set: ``x.shp`` with ``x.shx`` (index) and ``x.dbf``
(attributes: the class field) required, ``x.prj`` (its CRS) required here because
labels must be placed on the image, and ``x.cpg`` (text encoding) used when present.
The S3 fetcher downloads the set beside the ``.shp``; both modes refuse an incomplete
set by naming the missing files, before GDAL gets a chance to say something obscure.
"""

from __future__ import annotations

from pathlib import Path

from batch_image.errors import InvalidInputError

# the one OGR driver each format is opened with: GDAL never guesses by content, so a file
# cannot name itself .geojson and be read as an OGR VRT pointing at other files
DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".fgb": "FlatGeobuf",
    ".shp": "ESRI Shapefile",
}
VECTOR_SUFFIXES = tuple(DRIVERS)
SHAPEFILE_REQUIRED = (".shx", ".dbf", ".prj")
SHAPEFILE_OPTIONAL = (".cpg",)


def is_shapefile(name: str) -> bool:
    return name.lower().endswith(".shp")


def sidecar_names(shp_name: str) -> dict[str, str]:
    """``x.shp`` → ``{".shx": "x.shx", …}``, in the ``.shp``'s case (``X.SHP`` → ``X.SHX``)."""
    stem, ext = shp_name[: -len(".shp")], shp_name[-len(".shp") :]
    upper = ext.isupper()
    return {s: stem + (s.upper() if upper else s) for s in SHAPEFILE_REQUIRED + SHAPEFILE_OPTIONAL}


def incomplete_shapefile(name: str, missing: list[str]) -> InvalidInputError:
    return InvalidInputError(
        f"shapefile {name} comes without {', '.join(missing)}: a shapefile is a set of files "
        f"(expected .shp, .shx, .dbf and .prj, found only some). Upload {', '.join(missing)} "
        "beside it, or convert it to one GeoPackage (ogr2ogr out.gpkg in.shp)",
        code="shapefile_incomplete",
        missing=missing,
    )


def check_shapefile_set(path: Path, name: str = "") -> None:
    """Refuse a local ``.shp`` whose required sidecars are not beside it."""
    name = name or path.name
    sidecars = sidecar_names(path.name)
    missing = [sidecars[s] for s in SHAPEFILE_REQUIRED if not (path.parent / sidecars[s]).is_file()]
    if missing:
        raise incomplete_shapefile(name, missing)


def driver_for(path: Path) -> str:
    return DRIVERS[path.suffix.lower()]


def check_vector_name(path: Path, name: str) -> None:
    """A file whose name says it is a vector format the trainer reads."""
    if not path.name.lower().endswith(VECTOR_SUFFIXES):
        raise InvalidInputError(
            f"vector labels {name} are not a format rasterdrop reads: expected "
            f"{', '.join(VECTOR_SUFFIXES)}, found {path.suffix or 'no extension'}; convert "
            "them with ogr2ogr (ogr2ogr labels.gpkg FILE)",
            code="labels_unreadable",
        )
    if is_shapefile(path.name):
        check_shapefile_set(path, name)
