"""Small inline pictures of a run's image inputs, for the side-by-side table and the review widget.

A cell of an image variable (see :mod:`workbench.core.images`) is shown as a thumbnail: a
``data:`` URL of the picture shrunk to fit ``size`` pixels (Pillow), or, when Pillow cannot read
it, of the original bytes with a CSS ``max-width``. Nothing is fetched: an ``http(s)`` image, a
file that is gone or a file too big to inline shows as ``[image: name]``.

Example:
    >>> thumbnail("https://example.com/mug.jpg")
    Markup('[image: mug.jpg]')
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from markupsafe import Markup

from workbench.core.html import render
from workbench.core.images import base_dir_of, is_url, locate, mime_type

#: The longest side of a thumbnail, in CSS pixels.
THUMBNAIL_PX = 96
#: Larger files are not inlined when Pillow cannot shrink them.
_MAX_INLINE_BYTES = 512 * 1024
_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,(.*)", re.S | re.I)
_SAFE_SRC = re.compile(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]*")


def thumbnail(value: Any, *, base_dir: Path | None = None, size: int = THUMBNAIL_PX) -> Markup:
    """One image cell as an ``<img>`` thumbnail (inline data URL), or ``[image: name]`` when it cannot be shown."""
    text = str(value).strip() if isinstance(value, str) else ""
    data, label = _bytes_of(text, base_dir)
    src = _small(data, label, size) if data is not None else None
    if src is not None and not _SAFE_SRC.fullmatch(src):
        src = None
    # The src is checked base64 (nothing to escape or redact); the label goes through both.
    return Markup(render("thumbnail.html.j2", src=Markup(src) if src else None, label=label, size=size))


def with_thumbnails(values: Mapping[str, Any], experiment: Any, *, prefix: str = "") -> dict[str, Any]:
    """``values`` (``prefix`` + input name -> cell) with the cells of the experiment's image variables as thumbnails."""
    names = {prefix + n for variant in getattr(experiment, "variants", ()) for n in getattr(variant, "images", ())}
    if not names:
        return dict(values)
    dataset = getattr(experiment, "dataset", None)
    base_dir = base_dir_of(getattr(dataset, "source", "") or "")
    return {k: thumbnail(v, base_dir=base_dir) if k in names else v for k, v in values.items()}


def _bytes_of(text: str, base_dir: Path | None) -> tuple[bytes | None, str]:
    if not text:
        return None, "none"
    match = _DATA_URL.match(text)
    if match:
        try:
            return base64.b64decode(match.group(2), validate=False), match.group(1)
        except (binascii.Error, ValueError):
            return None, match.group(1)
    if is_url(text):
        return None, text.rsplit("/", 1)[-1] or text
    path = locate(text, base_dir)
    try:
        return path.read_bytes(), path.name
    except OSError:
        return None, f"{path.name} (not found)"


def _small(data: bytes, label: str, size: int) -> str | None:
    """A data URL of the picture fitted into ``size`` px; the original bytes when Pillow cannot read it."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((size, size))
            opaque = image.mode in ("RGB", "L")
            out = io.BytesIO()
            image.convert("RGB" if opaque else "RGBA").save(out, format="JPEG" if opaque else "PNG")
            kind = "image/jpeg" if opaque else "image/png"
            return f"data:{kind};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"
    except Exception:  # not a picture Pillow reads (an SVG...), or no Pillow: the bytes, shrunk by CSS
        kind = mime_type(data, label)
        if len(data) > _MAX_INLINE_BYTES or not kind.startswith("image/"):
            return None
        return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
