"""GDAL VRTs that stack one file per band: which files they read, and the rule for them.

A VRT is a small XML file whose bands read other files (Landsat and Sentinel
deliveries come as one GeoTIFF per band; ``gdalbuildvrt -separate`` stacks them).
The service reads only what the user uploaded beside it, so a VRT is accepted
when every file it references is a GeoTIFF named by a path relative to the VRT
(``relativeToVRT="1"``), inside the VRT's own folder (subfolders allowed, no
``..``), with no scheme, no ``/vsi…`` handler and no absolute path. Everything
else (a source anywhere else on the machine or the network, a VRT inside a VRT,
an XML entity, a Python pixel function) is refused before GDAL opens the file,
so it can never make the job read a file the user did not give it. In S3 mode
the same relative paths are keys beside the VRT's key, fetched with it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from batch_image.errors import InvalidInputError

VRT_SUFFIX = ".vrt"
VRT_SIGNATURE = b"<VRTDataset"
MAX_VRT_BYTES = 1024 * 1024
MAX_VRT_SOURCES = 512
SOURCE_SUFFIXES = (".tif", ".tiff")
# elements whose text is a file GDAL opens: band sources, warped VRT's source, overviews
_FILE_ELEMENTS = ("SourceFilename", "SourceDataset")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# GDAL options that make opening a VRT safe whatever its text says
OPEN_OPTIONS = {"GDAL_VRT_ENABLE_PYTHON": "NO"}


def is_vrt_name(name: str) -> bool:
    return name.lower().endswith(VRT_SUFFIX)


def looks_like_vrt(head: bytes) -> bool:
    """The first bytes of a VRT (after an optional UTF-8 byte order mark and blanks)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(VRT_SIGNATURE)


def _refuse(name: str, what: str, fix: str, **details: object) -> InvalidInputError:
    return InvalidInputError(f"{name}: {what}; {fix}", code="vrt_source_refused", **details)


def _check_source(name: str, text: str, relative: str | None) -> str:
    """One referenced path, normalized (``a/./b.tif`` → ``a/b.tif``), or a refusal."""
    fix = "list band files by their path relative to the VRT, inside its folder"
    path = (text or "").strip()
    if not path:
        raise _refuse(name, "a band source has no file name", fix)
    if relative != "1":
        raise _refuse(
            name,
            f"source {path!r} is not relative to the VRT (relativeToVRT={relative!r})",
            'write it as <SourceFilename relativeToVRT="1"> (gdalbuildvrt does so for files '
            "beside the VRT)",
            source=path,
        )
    if "\\" in path or path.startswith(("/", "~")) or _SCHEME.match(path):
        raise _refuse(name, f"source {path!r} is an absolute path or a URL", fix, source=path)
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../") or normal.startswith("/vsi"):
        raise _refuse(name, f"source {path!r} lies outside the VRT's folder", fix, source=path)
    if not normal.lower().endswith(SOURCE_SUFFIXES):
        raise _refuse(
            name,
            f"source {path!r} is not a GeoTIFF (.tif/.tiff)",
            "reference the band GeoTIFFs themselves (no VRT inside a VRT)",
            source=path,
        )
    return normal


def vrt_sources(text: bytes, name: str) -> tuple[str, ...]:
    """The relative paths of the files a VRT reads (each once, in order), all checked."""
    if len(text) > MAX_VRT_BYTES:
        raise InvalidInputError(
            f"{name} is {len(text):,} bytes, over the {MAX_VRT_BYTES:,} a band-stacking VRT "
            "needs: stack the bands with gdalbuildvrt -separate",
            code="vrt_too_large",
        )
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidInputError(
            f"{name} declares XML entities or a DOCTYPE, which a VRT never needs: remove them",
            code="vrt_unreadable",
        ) from exc
    except ParseError as exc:
        raise InvalidInputError(
            f"{name} is not a readable VRT: its XML is broken ({exc}); rebuild it with "
            "gdalbuildvrt",
            code="vrt_unreadable",
        ) from exc
    if root.tag != "VRTDataset":
        raise InvalidInputError(
            f"{name} is not a GDAL VRT (root element <{root.tag}>, expected <VRTDataset>)",
            code="vrt_unreadable",
        )
    if any(el.tag == "PixelFunctionCode" for el in root.iter()):
        raise _refuse(name, "it holds Python pixel-function code", "remove <PixelFunctionCode>")
    found: dict[str, None] = {}
    for el in root.iter():
        if el.tag in _FILE_ELEMENTS:
            found[_check_source(name, el.text or "", el.get("relativeToVRT"))] = None
    if not found:
        raise InvalidInputError(
            f"{name} references no band files: build it with gdalbuildvrt -separate over "
            "the band GeoTIFFs",
            code="vrt_unreadable",
        )
    if len(found) > MAX_VRT_SOURCES:
        raise InvalidInputError(
            f"{name} references {len(found)} files, more than {MAX_VRT_SOURCES}",
            code="vrt_too_many_sources",
        )
    return tuple(found)


def local_sources(path: Path, name: str = "") -> tuple[Path, ...]:
    """The band files of the VRT at ``path``, checked and present beside it."""
    name = name or path.name
    sources = vrt_sources(path.read_bytes(), name)
    missing = [s for s in sources if not (path.parent / s).is_file()]
    if missing:
        raise InvalidInputError(
            f"{name} references {', '.join(missing)}, not found beside it: upload the band "
            "files into the VRT's folder",
            code="vrt_source_missing",
            missing=missing,
        )
    return tuple(path.parent / s for s in sources)


def source_keys(vrt_key: str, sources: tuple[str, ...]) -> tuple[str, ...]:
    """``input/a/scene.vrt`` + ``bands/B4.tif`` → ``input/a/bands/B4.tif``."""
    folder = posixpath.dirname(vrt_key)
    return tuple(posixpath.join(folder, s) if folder else s for s in sources)
