"""Image inputs: dataset cells that a variant sends as pictures, not text.

A variant names its image variables (``images=["photo"]``; ``images: [photo]`` in YAML). In
each case, the cell of such a variable is one of:

- a local file path, relative to the dataset file's folder (or absolute): read and sent as a
  base64 ``data:`` URL with the file's MIME type (sniffed from its first bytes, else its suffix);
- an ``http(s)://`` URL or a ``data:`` URL: sent as it is (the provider fetches it).

The user message then becomes OpenAI/litellm content parts: the rendered text first, then one
``{"type": "image_url", "image_url": {"url": ...}}`` part per image variable, in the order listed.
The URL is an :class:`ImageURL` (a ``str``) that also carries a short label (the file name) and
the SHA-256 of the image's bytes: the readable ``prompt`` column shows ``[image: photo.jpg]``
(:func:`readable`), and the response cache key holds the hash, not the base64 text
(:func:`for_key`). A missing file is found before any call (:func:`check_images`).

Example:
    >>> readable([{"type": "text", "text": "What is it?"},
    ...           {"type": "image_url", "image_url": {"url": "https://example.com/a/mug.jpg"}}])
    'What is it?\\n[image: mug.jpg]'
"""

from __future__ import annotations

import base64
import functools
import hashlib
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.core.exceptions import DatasetError, ModelError, TemplateError
from workbench.util.paths import resolve

#: Leading bytes of the image formats vision models take, and their MIME types.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_URL_PREFIXES = ("http://", "https://", "data:")


class ImageURL(str):
    """The URL sent for one image (a ``data:`` URL for a local file), with its label and hash.

    Attributes:
        label: What people read: the file name, or the URL.
        digest: SHA-256 (hex) of the image's bytes (of the URL, for a remote image).
    """

    label: str
    digest: str

    def __new__(cls, url: str, *, label: str, digest: str) -> ImageURL:
        self = super().__new__(cls, url)
        self.label, self.digest = label, digest
        return self

    def __reduce__(self) -> Any:  # copies and pickles keep the label and the hash
        return (_image_url, (str(self), self.label, self.digest))


def _image_url(url: str, label: str, digest: str) -> ImageURL:
    return ImageURL(url, label=label, digest=digest)


def is_url(value: str) -> bool:
    """Whether a cell is a URL sent as it is (``http(s)://`` or ``data:``), not a file path."""
    return value.strip().lower().startswith(_URL_PREFIXES)


def mime_type(data: bytes, name: str) -> str:
    """The MIME type of an image: from its first bytes, else from the file name's suffix.

    Example:
        >>> mime_type(b"\\x89PNG\\r\\n\\x1a\\n...", "x.jpg")
        'image/png'
    """
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(name)[0]
    return guessed if guessed and guessed.startswith("image/") else "application/octet-stream"


def base_dir_of(source: str) -> Path:
    """The folder image paths are relative to: the dataset file's (the working directory for a DataFrame)."""
    if not source or source.startswith("<"):
        return Path.cwd()
    return resolve(source).parent


def locate(value: str, base_dir: Path | None) -> Path:
    """The file a cell names: absolute as given, else relative to ``base_dir`` (the working directory)."""
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


@functools.lru_cache(maxsize=16)
def _file_url(path: str, stamp: tuple[int, int]) -> ImageURL:
    """A local image as a data URL, read once while the file is unchanged (variants share it)."""
    data = Path(path).read_bytes()
    encoded = base64.b64encode(data).decode("ascii")
    return ImageURL(
        f"data:{mime_type(data, path)};base64,{encoded}", label=Path(path).name, digest=hashlib.sha256(data).hexdigest()
    )


def image_url(value: Any, *, base_dir: Path | None = None, where: str | None = None, field: str = "") -> ImageURL:
    """The :class:`ImageURL` of one cell: a URL as it is, a local file as a base64 data URL.

    Raises:
        DatasetError: the cell is not text, or names a file that cannot be read.
    """
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(_not_text(value, where, field))
    if is_url(value):
        url = value.strip()
        label = url.split(",", 1)[0] if url.lower().startswith("data:") else url.rsplit("/", 1)[-1] or url
        return ImageURL(url, label=label, digest=hashlib.sha256(url.encode()).hexdigest())
    path = locate(value, base_dir)
    try:
        stat = path.stat()
        return _file_url(str(path), (stat.st_size, stat.st_mtime_ns))
    except OSError as exc:
        raise DatasetError(_missing(value, path, where, field, exc)) from exc


def _not_text(value: Any, where: str | None, field: str) -> str:
    return (
        f"{where or 'a row'}: image column {field!r} holds {value!r}; give a file path "
        "(relative to the dataset file) or an http(s)/data URL"
    )


def _missing(value: str, path: Path, where: str | None, field: str, exc: OSError) -> str:
    return (
        f"{where or 'a row'}: image column {field!r} names {value!r}, which cannot be read "
        f"({exc.strerror or exc} at {str(path)!r}); image paths are relative to the dataset file's folder: "
        "fix the path, add the file, or give an http(s)/data URL"
    )


def user_content(
    text: str, row: Mapping[str, Any], images: Sequence[str], *, base_dir: Path | None = None, where: str | None = None
) -> str | list[dict[str, Any]]:
    """The user turn's content: ``text`` alone, or a text part followed by one image part per image variable."""
    if not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for name in images:
        url = image_url(row.get(name), base_dir=base_dir, where=where, field=name)
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def check_names(images: Iterable[Any], variant: str) -> tuple[str, ...]:
    """A variant's ``images`` as a tuple of variable names.

    Raises:
        TemplateError: an entry is not a non-empty string, or repeats.
    """
    if isinstance(images, str):
        images = [images]
    names = tuple(images)
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad or len(set(names)) != len(names):
        raise TemplateError(
            f"variant {variant!r}: images must list distinct column names (e.g. images=['photo']), got {list(names)!r}"
        )
    return names


def check_images(
    cases: Iterable[Any], variants: Sequence[Any], *, text_only_models: Sequence[str], base_dir: Path
) -> None:
    """Before any call: image variants only on models that take images, and every image file there.

    Args:
        cases: The dataset's cases (``inputs`` and ``where``).
        variants: The experiment's variants (their ``images``).
        text_only_models: The experiment's models that take text only (the embedded ``local/...`` ones).
        base_dir: The dataset file's folder.

    Raises:
        ModelError: a variant with images on a text-only model.
        DatasetError: a cell that names no readable file (file, row, field and the fix).
    """
    with_images = [v for v in variants if getattr(v, "images", ())]
    if not with_images:
        return
    for variant in with_images:
        for model in text_only_models:
            raise ModelError(
                f"variant {variant.name!r} sends images ({', '.join(variant.images)}) but model {model!r} "
                "is an embedded model that takes text only; run the variant on a vision model "
                "(e.g. 'openai/gpt-4o-mini') or drop `images` from it"
            )
    names = sorted({name for v in with_images for name in v.images})
    for case in cases:
        for name in names:
            value = case.inputs.get(name)
            if not isinstance(value, str) or not value.strip():
                raise DatasetError(_not_text(value, case.where, name))
            if not is_url(value):
                path = locate(value, base_dir)
                if not path.is_file():
                    raise DatasetError(_missing(value, path, case.where, name, FileNotFoundError(2, "no such file")))


def readable(content: Any) -> str:
    """A message's content as text people read: image parts become ``[image: photo.jpg]``, never base64."""
    if not isinstance(content, list):
        return str(content)
    pieces = []
    for part in content:
        if not isinstance(part, Mapping):
            pieces.append(str(part))
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            pieces.append(f"[image: {_label(url)}]")
        else:
            pieces.append(str(part.get("text", "")))
    return "\n".join(pieces)


def _label(url: Any) -> str:
    if isinstance(url, ImageURL):
        return url.label
    text = str(url)
    return text.split(",", 1)[0] if text.lower().startswith("data:") else text.rsplit("/", 1)[-1] or text


def for_key(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``messages`` with each image as ``sha256:<hash of its bytes>``: what a cache key hashes instead of base64."""
    out: list[Mapping[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, Mapping) and p.get("type") == "image_url" for p in content):
            parts = [
                {
                    "type": "image_url",
                    "image_url": {**p["image_url"], "url": "sha256:" + _digest(p["image_url"]["url"])},
                }
                if isinstance(p, Mapping) and p.get("type") == "image_url"
                else p
                for p in content
            ]
            message = {**message, "content": parts}
        out.append(message)
    return out


def _digest(url: Any) -> str:
    return url.digest if isinstance(url, ImageURL) else hashlib.sha256(str(url).encode()).hexdigest()
