"""QGIS styles for the GeoPackages rasterdrop writes (accuracy samples, review points,
class polygons).

QGIS loads a layer's default style from the GeoPackage's own ``layer_styles`` table
(what "Save style → in database" writes), so the file opens styled wherever it is
copied; a ``.qml`` beside it is written too for tools that look there. The table is
the one QGIS creates, registered in ``gpkg_contents`` as an attributes table so the
file stays a valid GeoPackage.

Three styles: points with a drop-down (``ValueMap`` widget) of class names on the
``reference`` field, the map class hidden from the form (blind labelling, as Olofsson
et al. recommend); review points drawn by confidence (graduated renderer) with the same
drop-down on ``label``; polygons filled by class (categorized renderer).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from xml.sax.saxutils import quoteattr

from batch_image import clock

#: QGIS's value of NULL in a ValueMap (what the "(not labelled)" entry stores).
QGIS_NULL = "{2839923C-8B7D-419E-B84B-CA2FE9B80EC7}"

_LAYER_STYLES = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
  styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME)"""


def _symbol(name: str, kind: str, colour: str) -> str:
    r, g, b = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    layer = "SimpleMarker" if kind == "marker" else "SimpleFill"
    extra = (
        '<Option type="QString" name="size" value="2.6"/>'
        '<Option type="QString" name="outline_color" value="0,0,0,255"/>'
        if kind == "marker"
        else '<Option type="QString" name="outline_style" value="no"/>'
    )
    return (
        f'<symbol type="{kind}" name={quoteattr(name)} alpha="1"><layer class="{layer}">'
        f'<Option type="Map"><Option type="QString" name="color" value="{r},{g},{b},255"/>'
        f"{extra}</Option></layer></symbol>"
    )


def _categorized(field: str, kind: str, classes: Sequence[tuple[int, str, str]]) -> str:
    cats = "".join(
        f'<category value="{cid}" symbol="{i}" label={quoteattr(name)} render="true"/>'
        for i, (cid, name, _) in enumerate(classes)
    )
    symbols = "".join(_symbol(str(i), kind, colour) for i, (_, _, colour) in enumerate(classes))
    return (
        f'<renderer-v2 type="categorizedSymbol" attr="{field}" forceraster="0">'
        f"<categories>{cats}</categories><symbols>{symbols}</symbols></renderer-v2>"
    )


def _value_map(classes: Sequence[tuple[int, str, str]]) -> str:
    entries = [("(not labelled)", QGIS_NULL)] + [(n, str(cid)) for cid, n, _ in classes]
    items = "".join(
        f'<Option type="Map"><Option type="QString" name={quoteattr(n)} value={quoteattr(v)}/>'
        "</Option>"
        for n, v in entries
    )
    return (
        '<editWidget type="ValueMap"><config><Option type="Map">'
        f'<Option type="List" name="map">{items}</Option></Option></config></editWidget>'
    )


def _hidden() -> str:
    return '<editWidget type="Hidden"><config><Option/></config></editWidget>'


def sample_style(classes: Sequence[tuple[int, str, str]], hidden: Sequence[str]) -> str:
    """Points coloured by map class; ``reference`` a drop-down of ``classes`` (id, name,
    colour); ``hidden`` fields left out of the form and not editable."""
    return _document(
        _categorized("map_class", "marker", classes) + _form("reference", classes, hidden, ())
    )


#: Confidence bands of the review points' style: (lower, upper, colour, legend label).
CONFIDENCE_BANDS = (
    (0, 40, "#d7191c", "0–40 % (least sure)"),
    (40, 60, "#fdae61", "40–60 %"),
    (60, 80, "#ffffbf", "60–80 %"),
    (80, 100, "#1a9641", "80–100 %"),
)


def _graduated(field: str, bands: Sequence[tuple[int, int, str, str]]) -> str:
    ranges = "".join(
        f'<range lower="{lo}" upper="{hi}" symbol="{i}" label={quoteattr(label)} render="true"/>'
        for i, (lo, hi, _, label) in enumerate(bands)
    )
    symbols = "".join(_symbol(str(i), "marker", band[2]) for i, band in enumerate(bands))
    return (
        f'<renderer-v2 type="graduatedSymbol" attr="{field}" graduatedMethod="GraduatedColor" '
        f'forceraster="0"><ranges>{ranges}</ranges><symbols>{symbols}</symbols></renderer-v2>'
    )


def review_style(classes: Sequence[tuple[int, str, str]]) -> str:
    """Review points drawn by ``confidence`` (red: least sure); ``label`` a drop-down of
    ``classes``; the prediction shown read-only (a reviewer may see what the map says)."""
    readonly = ("predicted", "predicted_name", "confidence", "margin")
    hidden = ("point_id", "fingerprint", "row", "col")
    return _document(
        _graduated("confidence", CONFIDENCE_BANDS) + _form("label", classes, hidden, readonly)
    )


def _form(
    edit: str,
    classes: Sequence[tuple[int, str, str]],
    hidden: Sequence[str],
    readonly: Sequence[str],
) -> str:
    """The attribute form: ``edit`` a drop-down of class names, ``hidden`` fields out of
    the form, ``readonly`` ones shown but not editable."""
    fields = f'<field name="{edit}">{_value_map(classes)}</field>' + "".join(
        f'<field name="{f}">{_hidden()}</field>' for f in hidden
    )
    editable = "".join(f'<field name="{f}" editable="0"/>' for f in (*hidden, *readonly))
    return (
        f"<fieldConfiguration>{fields}</fieldConfiguration>"
        f'<editable>{editable}<field name="{edit}" editable="1"/></editable>'
        '<editform tolabel="1"></editform>'
    )


def polygon_style(classes: Sequence[tuple[int, str, str]]) -> str:
    """Polygons filled with each class's colour, labelled by class name in the legend."""
    return _document(_categorized("class_id", "fill", classes))


def _document(body: str) -> str:
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis version="3.34" styleCategories="Symbology|Fields|Forms">{body}</qgis>\n'
    )


def store_default_style(gpkg: Path, layer: str, qml: str, name: str) -> None:
    """Make ``qml`` the layer's default style inside the GeoPackage (``layer_styles``)."""
    with closing(sqlite3.connect(gpkg)) as db, db:
        db.execute(_LAYER_STYLES)
        db.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', ?)",
            (clock.iso_stamp(),),
        )
        db.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
        db.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
            "owner, ui, update_time) VALUES ('', '', ?, 'geom', ?, ?, '', 1, ?, '', '', ?)",
            (layer, name, qml, f"rasterdrop {name}", clock.iso_stamp()),
        )
