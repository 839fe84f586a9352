"""One redaction path for every string that leaves the process.

MLflow params, tags, tables and artifacts, the response cache's keys, label
files, reports and notebook HTML all pass :data:`REDACTOR`, a
:class:`Redactor` chain. Its first link, :class:`SecretScrubber`, keeps
credentials out of them:

- a value under a credential-like key (``api_key``, ``Authorization``,
  ``x-api-key``, ``token``...) is masked at any depth of a mapping;
- a credential the process has seen (learned from variant and judge params,
  or set in the environment as ``*_API_KEY``, ``*_TOKEN``...) is masked
  wherever it appears in text, e.g. inside an error message;
- text that looks like a credential (``sk-...``, ``Bearer ...``, ``AKIA...``)
  is masked even when it was never seen.

Its second link, :class:`~workbench.core.pii.PiiRedactor` (``REDACTOR.pii``, on by
default), rewrites personal data (e-mails, phones, cards, IBANs, IPs, Russian passports
and INNs, order ids) with Presidio; ``REDACTOR.pii.configure(...)`` chooses what and how.
Other links are added with :meth:`Redactor.add`.

Example:
    >>> REDACTOR.data({"extra_headers": {"Authorization": "Bearer abc123456789"}, "temperature": 0})
    {'extra_headers': {'Authorization': '***'}, 'temperature': 0}
    >>> REDACTOR.text("failed with key " + "sk-" + "x" * 24)  # a made-up key, shaped like one
    'failed with key ***'
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from workbench.core.pii import PiiRedactor

#: What a redacted value is replaced with.
MASK = "***"

#: Keys whose values are credentials. "token" only as a whole word (``access_token``,
#: ``x-auth-token``): ``max_tokens`` changes the output, it is not a credential.
SECRET_KEY = re.compile(
    r"key|secret|passw(?:or)?d|authori[sz]ation|credential|cookie|(?:^|[_-])token$|^token", re.IGNORECASE
)

#: Text that is a credential whatever key it came under. Written in the syntax Python's ``re``
#: and RE2 (Arrow's vectorised replace, used on whole table columns) share: no lookbehind.
_CREDENTIAL_PATTERNS = (
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic, Stripe style keys
    r"[Bb]earer [A-Za-z0-9._\-~+/]{8,}=*",  # an Authorization header's value
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
)
#: Fields the workbench makes itself (content hashes, run ids, process tags): credentials are still
#: masked in them, but the PII link leaves them alone. A hash or a timestamp is digits that may
#: look like a phone or a card number, and rewriting one would break what looks it up.
MACHINE_FIELDS = frozenset(
    {
        "variant_version",
        "version",
        "variants",
        "dataset_hash",
        "hash",
        "output_hash",
        "run_id",
        "git_commit",
        "workbench.pid",
        "workbench.host",
        "workbench.heartbeat",
        "workbench.resumes",
        "workbench.report_id",
        "mlflow.parentRunId",
        "bdata",  # plotly's base64 typed arrays
    }
)
#: Secrets shorter than this are not searched for in text (they would mask ordinary words).
_MIN_SECRET_CHARS = 6


def is_secret(key: object) -> bool:
    """Whether a mapping key names a credential (``api_key``, ``Authorization``, ``x-api-key``...)."""
    return bool(SECRET_KEY.search(str(key)))


def without_secrets(value: Any) -> Any:
    """``value`` with every credential-like key *dropped*, at any depth.

    For what must not depend on a credential at all: version hashes, cache keys,
    YAML written back to disk.
    """
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items() if not is_secret(k)}
    if isinstance(value, (list, tuple)):
        return [without_secrets(v) for v in value]
    return value


def secret_values(value: Any) -> set[str]:
    """Every string found under a credential-like key of ``value``, at any depth."""
    found: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, secret or is_secret(k))
        elif isinstance(node, (list, tuple, set)):
            for v in node:
                walk(v, secret)
        elif secret and isinstance(node, str):
            found.add(node)
            found.update(node.split())  # "Bearer sk-..." -> the token alone too

    walk(value, False)
    return {s for s in found if len(s) >= _MIN_SECRET_CHARS and s.lower() != "bearer"}


class RedactionLink(Protocol):
    """One link of a :class:`Redactor` chain: rewrites text it must not let out."""

    def redact_text(self, text: str) -> str: ...


class SecretScrubber:
    """Masks credentials in text: ones it was told about, ones in the environment, ones that look like keys."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._source = ""
        self._pattern: re.Pattern[str] | None = None
        self._environ: dict[Any, Any] | None = None

    def learn(self, values: Iterable[str]) -> None:
        """Remember credentials to mask wherever they appear."""
        new = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_CHARS}
        with self._lock:
            if not new <= self._known:
                self._known |= new
                self._pattern = None

    def source(self) -> str:
        """The one pattern: the known and the environment's credentials (longest first), then the shapes."""
        # Rebuilt only when a credential was learned or the environment changed. Comparing the
        # environment's raw dict is one C-level comparison; scanning its keys per string is not.
        raw = getattr(os.environ, "_data", None)
        with self._lock:
            if self._pattern is None or raw is None or raw != self._environ:
                env = {v for k, v in os.environ.items() if is_secret(k) and len(v) >= _MIN_SECRET_CHARS}
                # Longest first, so a key is masked whole before any shorter secret inside it.
                literals = sorted(self._known | env, key=len, reverse=True)
                self._source = "|".join([re.escape(v) for v in literals] + list(_CREDENTIAL_PATTERNS))
                self._pattern = re.compile(self._source)
                self._environ = dict(raw) if raw is not None else None
            return self._source

    def redact_text(self, text: str) -> str:
        self.source()
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def redact_array(self, array: Any) -> Any:
        """A pyarrow string array with the same masking, in one vectorised pass.

        The array itself when nothing matches (the usual case): no copy of a large column.
        """
        import pyarrow.compute as pc

        pattern = self.source()
        if not pc.any(pc.match_substring_regex(array, pattern=pattern)).as_py():
            return array
        return pc.replace_substring_regex(array, pattern=pattern, replacement=MASK)


class Redactor:
    """A chain of :class:`RedactionLink` objects applied to everything that leaves the process.

    Args:
        links: The chain, applied in order; :class:`SecretScrubber` first by default.
        pii: The PII link (second in the chain), reachable as ``.pii`` to configure it.
    """

    def __init__(self, links: Iterable[RedactionLink] | None = None, *, pii: PiiRedactor | None = None) -> None:
        self.secrets = SecretScrubber()
        self.pii = pii
        self.links: list[RedactionLink] = [self.secrets, *([pii] if pii is not None else []), *(links or ())]

    def add(self, link: RedactionLink) -> None:
        """Append a link (e.g. a PII recognizer) to the chain."""
        self.links.append(link)

    def learn(self, data: Any) -> None:
        """Remember the credentials under credential-like keys of ``data`` (any depth)."""
        self.secrets.learn(secret_values(data))

    def text(self, text: str, *, pii: bool = True) -> str:
        """``text`` through every link (``pii=False``: all but the PII link, for :data:`MACHINE_FIELDS`)."""
        for link in self.links:
            if pii or link is not self.pii:
                text = link.redact_text(text)
        return text

    def field(self, key: Any, text: str) -> str:
        """The value of field ``key`` (a tag, a param): :meth:`text`, without the PII link for a machine field."""
        return self.text(text, pii=str(key) not in MACHINE_FIELDS)

    def data(self, value: Any, *, pii: bool = True) -> Any:
        """``value`` with credential-like keys masked at any depth and every string through :meth:`text`.

        Mappings and sequences are copied; numbers, booleans and None are kept as they are.
        Values under :data:`MACHINE_FIELDS` keys skip the PII link.
        """
        if isinstance(value, str):
            return self.text(value, pii=pii)
        if isinstance(value, Mapping):
            return {
                k: (MASK if is_secret(k) and value_present(v) else self.data(v, pii=pii and k not in MACHINE_FIELDS))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)) or _object_array(value):  # a list cell read back from Parquet is an array
            return [self.data(v, pii=pii) for v in value]
        if isinstance(value, (set, frozenset)):
            return sorted((self.data(v, pii=pii) for v in value), key=str)
        return value

    def frame(self, frame: Any) -> Any:
        """``frame`` with every text cell through :meth:`text` (a copy when anything was masked).

        Arrow-backed string columns (what the engine's results table holds) go through
        links that offer ``redact_array`` in one vectorised pass; other text cells one by one.
        """
        import pandas as pd
        import pyarrow as pa

        changed: dict[Any, Any] = {}
        for column in frame.columns:
            links = [link for link in self.links if link is not self.pii or str(column) not in MACHINE_FIELDS]
            series = frame[column]
            if series.dtype == object and not series.map(_may_hold_text).any():
                continue  # numbers, booleans and missing values only: nothing to mask, nothing to copy
            if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
                original = array = pa.array(series.array)
                for link in links:
                    redact_array = getattr(link, "redact_array", None)
                    if redact_array is not None:
                        array = redact_array(array)
                    else:  # a link without a vectorised form: cell by cell, a new array only on a change
                        values = array.to_pylist()
                        redacted = [None if v is None else link.redact_text(v) for v in values]
                        array = array if redacted == values else pa.array(redacted, type=array.type)
                if array is not original:  # only a column with something to mask is copied
                    changed[column] = array.to_pandas(types_mapper={array.type: series.dtype}.get)
            elif series.dtype == object or isinstance(series.dtype, pd.StringDtype):
                pii = str(column) not in MACHINE_FIELDS
                changed[column] = series.map(lambda v, pii=pii: self._cell(v, pii=pii), na_action="ignore")
        if not changed:
            return frame
        out = frame.copy(deep=False)
        for column, values in changed.items():
            out[column] = values.set_axis(frame.index)
        return out

    def _cell(self, value: Any, *, pii: bool = True) -> Any:
        return self.text(value, pii=pii) if isinstance(value, str) else self.data(value, pii=pii)


def _may_hold_text(value: Any) -> bool:
    return isinstance(value, (str, Mapping, list, tuple, set, frozenset)) or _object_array(value)


def _object_array(value: Any) -> bool:
    """A numpy array of Python objects: how pandas hands out a list cell (e.g. a chat history) read from Arrow."""
    return isinstance(value, np.ndarray) and value.dtype.kind == "O" and value.ndim == 1


def value_present(value: Any) -> bool:
    """A masked value shows ``***`` only when there was something to hide."""
    return value is not None and value != ""


#: The process-wide chain every writer uses: credentials, then PII.
REDACTOR = Redactor(pii=PiiRedactor())


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with credentials masked at any depth (``"***"``)."""
    return dict(REDACTOR.data(params))
