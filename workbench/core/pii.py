"""The PII link of the redaction chain, built on Microsoft Presidio.

:data:`~workbench.core.redaction.REDACTOR` carries a :class:`PiiRedactor` as
``REDACTOR.pii``, on by default: e-mail addresses, phone numbers (Presidio's
``phonenumbers`` recognizer and Russian formats), payment cards (Luhn-checked),
IBANs (checksum), IP addresses, Russian passports and INNs (check digits) and
marketplace order ids are replaced with ``<ENTITY>`` placeholders before any
text leaves the process. Per entity, ``mask`` or a keyed ``hash`` (a stable
pseudonym, HMAC with ``$WORKBENCH_PII_KEY``) can be chosen instead.

No model is downloaded: Presidio runs on a blank spaCy English pipeline (its
pattern recognizers need tokens only). Names and locations need a spaCy NER
model; when one is installed (``en_core_web_sm``/``md``/``lg``) PERSON and
LOCATION are detected too, otherwise they are not. tldextract (Presidio's
e-mail check) reads its bundled public suffix list: no network.

Presidio is imported and its analyzer built on first use, once per process
(about a second). Texts are screened first by a cheap pattern (digits, ``@``,
IBAN-like codes, the order-id patterns): one with no candidate never reaches
Presidio, and results are memoised per text.

Example:
    >>> REDACTOR.pii.configure(operators={"EMAIL_ADDRESS": "mask"})  # doctest: +SKIP
    >>> REDACTOR.text("write to ann@example.com or +7 912 345-67-89")  # doctest: +SKIP
    'write to *************** or <PHONE_NUMBER>'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.exceptions import ConfigError
from workbench.core.pii_config import (
    DEFAULT_ENTITIES,
    DEFAULT_ORDER_PATTERNS,
    NER_ENTITIES,
    Operator,
    PiiSettings,
    load_settings,
    validated,
)
from workbench.core.pii_engine import EngineKey, engine, ner_model, pieces

#: A run of this many characters with no space, quote or backslash is an encoded blob (a base64
#: image, the packed plotly.js of a report): it is left as it is, as a mask would corrupt it.
BLOB_CHARS = 1000
#: Texts that held PII, remembered with their redacted form: a run's rows are written twice (each
#: variant's table, then the parent's whole table) and an input once per variant. Only texts up to
#: :data:`_MEMO_CHARS` long are kept, so the memo stays under ~100 MB.
_MEMO_MAX = 100_000
_MEMO_CHARS = 4_000

#: What a text needs to hold before Presidio is asked: digits in a run, an @, an IBAN-like code,
#: an IPv6 group. Written in the syntax Python and RE2 (Arrow's vectorised match) share.
_CANDIDATE = r"@|\d[\d\s().+\-/]{4,}\d|\d+\.\d+\.\d+\.\d+|[A-Za-z]{2}\d{2}|[0-9A-Fa-f]{1,4}::?[0-9A-Fa-f]{0,4}:"
_URL_CANDIDATE = r"://|www\.|[A-Za-z0-9\-]\.[A-Za-z]{2,}"
_BLOB = re.compile(rf"[^\s\"'\\]{{{BLOB_CHARS},}}")
_LOOKAROUND = re.compile(r"\(\?<?[=!](?:[^()\\]|\\.)*\)")


@dataclass(frozen=True)
class Finding:
    """One piece of PII found in a text."""

    entity: str
    start: int
    end: int
    score: float
    text: str


class PiiRedactor:
    """A :class:`~workbench.core.redaction.Redactor` link that rewrites PII (see the module docstring).

    Args:
        settings: Fixed settings; by default they are read on first use from
            ``pii.yaml`` in the project root (or ``$WORKBENCH_PII_CONFIG``).
    """

    def __init__(self, settings: PiiSettings | None = None) -> None:
        self._settings = settings
        self._lock = threading.RLock()
        self._memo: dict[str, str] = {}
        self._screen: _Screen | None = None
        self._entities: tuple[str, ...] | None = None

    # -- settings -----------------------------------------------------------------------------
    @property
    def settings(self) -> PiiSettings:
        """The settings in force (read from ``pii.yaml`` on first use)."""
        with self._lock:
            if self._settings is None:
                self._settings = load_settings()
            return self._settings

    def configure(
        self,
        *,
        enabled: bool | None = None,
        entities: Sequence[str] | None = None,
        operators: Mapping[str, str | Mapping[str, Any] | Operator] | None = None,
        default_operator: str | Mapping[str, Any] | None = None,
        patterns: Sequence[Mapping[str, Any]] | None = None,
        score_threshold: float | None = None,
        allow: Sequence[str] | None = None,
        phone_regions: Sequence[str] | None = None,
    ) -> PiiSettings:
        """Change the settings in this process; arguments left out keep their value.

        Args:
            enabled: False turns the link off (credentials are still masked).
            entities: What to detect, e.g. ``["EMAIL_ADDRESS", "PHONE_NUMBER"]``.
            operators: Per entity: ``"replace"``, ``"mask"``, ``"hash"`` or
                ``{"type": "mask", "keep_last": 4}``.
            default_operator: For entities without their own (``"replace"``).
            patterns: Extra regexes, ``[{"entity": "ORDER_ID", "regex": "..."}]``.
            score_threshold: Presidio's minimum confidence (0.4).
            allow: Exact values never rewritten (loopback addresses by default).
            phone_regions: Where numbers without ``+country`` are read as phones (``("RU",)``).

        Raises:
            ConfigError: a bad value, named; ``hash`` chosen without ``$WORKBENCH_PII_KEY``.

        Example:
            >>> REDACTOR.pii.configure(operators={"EMAIL_ADDRESS": "hash"})  # doctest: +SKIP
        """
        changes = {
            "enabled": enabled,
            "entities": None if entities is None else tuple(entities),
            "operators": None if operators is None else dict(operators),
            "default_operator": default_operator,
            "patterns": None if patterns is None else list(patterns),
            "score_threshold": score_threshold,
            "allow": None if allow is None else tuple(allow),
            "phone_regions": None if phone_regions is None else tuple(phone_regions),
        }
        with self._lock:
            current = self.settings.model_dump(exclude_unset=False)
            current.update({k: v for k, v in changes.items() if v is not None})
            settings = validated(current, where="REDACTOR.pii.configure()")
            self._check_entities(settings)
            self._settings = settings
            self._memo.clear()
            self._screen = None
            self._entities = None
            return settings

    def reset(self) -> None:
        """Forget :meth:`configure`: the settings are read again from ``pii.yaml`` (or the defaults)."""
        with self._lock:
            self._settings = None
            self._memo.clear()
            self._screen = None
            self._entities = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def entities(self) -> tuple[str, ...]:
        """The entity types detected: the configured ones, else the defaults (names and
        locations too when a spaCy NER model is installed)."""
        if self._entities is None:
            settings = self.settings
            if settings.entities is not None:
                self._entities = settings.entities
            else:
                extra = tuple(dict.fromkeys(p.entity for p in settings.patterns if p.entity not in DEFAULT_ENTITIES))
                self._entities = DEFAULT_ENTITIES + extra + (NER_ENTITIES if ner_model() else ())
        return self._entities

    def _check_entities(self, settings: PiiSettings) -> None:
        if settings.entities is None:
            return
        supported = set(engine(_patterns(settings)).entities)
        unknown = [e for e in settings.entities if e not in supported]
        if unknown:
            hint = " (PERSON and LOCATION need a spaCy NER model, e.g. en_core_web_sm)" if not ner_model() else ""
            raise ConfigError(
                f"REDACTOR.pii.configure(): unknown entities {unknown}; choose among {sorted(supported)}{hint}, "
                "or add a pattern for it"
            )

    # -- detection -----------------------------------------------------------------------------
    def find(self, text: str, *, entities: Iterable[str] | None = None) -> list[Finding]:
        """Every piece of PII in ``text`` (whether or not redaction is on), in order.

        Example:
            >>> [f.entity for f in REDACTOR.pii.find("mail ann@example.com")]  # doctest: +SKIP
            ['EMAIL_ADDRESS']
        """
        wanted = tuple(entities) if entities is not None else self.entities()
        settings = self.settings
        if not text or not self._screen_for(settings, wanted).may_hold(text):
            return []
        analyzer = engine(_patterns(settings))
        found = []
        for offset, piece in pieces(text):
            for r in analyzer.analyze(piece, wanted, settings):
                found.append(Finding(r.entity_type, r.start + offset, r.end + offset, r.score, piece[r.start : r.end]))
        return sorted(found, key=lambda f: (f.start, -f.end))

    # -- the link ------------------------------------------------------------------------------
    def redact_text(self, text: str) -> str:
        """``text`` with its PII rewritten (unchanged when the link is off)."""
        settings = self.settings
        if not settings.enabled or not text:
            return text
        memo = self._memo.get(text)
        if memo is not None:
            return memo
        wanted = self.entities()
        if not self._screen_for(settings, wanted).may_hold(text):
            return text
        analyzer = engine(_patterns(settings))
        out = "".join(
            analyzer.rewrite(piece, wanted, settings) if analyse else piece for analyse, piece in _segments(text)
        )
        if len(text) <= _MEMO_CHARS:
            with self._lock:
                if len(self._memo) >= _MEMO_MAX:
                    self._memo.clear()
                self._memo[text] = out
        return out

    def redact_array(self, array: Any) -> Any:
        """A pyarrow string array through :meth:`redact_text`; the screen runs vectorised, so only
        cells that may hold PII are read into Python. The array itself when nothing changes."""
        import pyarrow as pa
        import pyarrow.compute as pc

        settings = self.settings
        if not settings.enabled or len(array) == 0:
            return array
        screen = self._screen_for(settings, self.entities())
        candidates = screen.arrow_mask(array, pc)
        if candidates is not None:
            if not pc.any(candidates).as_py():
                return array
            indices = pc.indices_nonzero(candidates).to_pylist()
        else:
            indices = list(range(len(array)))
        values = array.to_pylist()
        changed = False
        for i in indices:
            value = values[i]
            if value is None:
                continue
            redacted = self.redact_text(value)
            if redacted != value:
                values[i], changed = redacted, True
        return pa.array(values, type=array.type) if changed else array

    def _screen_for(self, settings: PiiSettings, entities: Sequence[str]) -> _Screen:
        screen = self._screen
        if screen is None or screen.entities != tuple(entities):
            screen = self._screen = _Screen(settings, tuple(entities))
        return screen


class _Screen:
    """The cheap test a text passes before Presidio reads it (a superset of what it finds)."""

    def __init__(self, settings: PiiSettings, entities: tuple[str, ...]) -> None:
        self.entities = entities
        core = _CANDIDATE + ("|" + _URL_CANDIDATE if "URL" in entities else "")
        self.core = re.compile(core)
        self.extra = [re.compile(p) for p in (*DEFAULT_ORDER_PATTERNS, *(p.regex for p in settings.patterns))]
        # Names and places have no shape to screen for: with NER on, every text is read.
        self.everything = any(e in NER_ENTITIES for e in entities)
        self.arrow_patterns = [core] + [_LOOKAROUND.sub("", p.pattern) for p in self.extra]

    def may_hold(self, text: str) -> bool:
        return self.everything or bool(self.core.search(text)) or any(p.search(text) for p in self.extra)

    def arrow_mask(self, array: Any, pc: Any) -> Any:
        """A boolean array of the cells that may hold PII, or None when it must be read in Python."""
        if self.everything:
            return None
        mask = None
        try:
            for pattern in self.arrow_patterns:
                hit = pc.fill_null(pc.match_substring_regex(array, pattern=pattern), False)
                mask = hit if mask is None else pc.or_(mask, hit)
        except Exception:  # a user pattern RE2 cannot compile: screen in Python instead
            return None
        return mask


def _segments(text: str) -> Iterable[tuple[bool, str]]:
    """``text`` cut into (analyse?, piece): encoded blobs are kept out of the analysis."""
    last = 0
    for blob in _BLOB.finditer(text):
        if blob.start() > last:
            yield True, text[last : blob.start()]
        yield False, blob.group()
        last = blob.end()
    if last < len(text):
        yield True, text[last:]


def _patterns(settings: PiiSettings) -> EngineKey:
    return tuple((p.entity, p.regex, p.score) for p in settings.patterns), settings.phone_regions
