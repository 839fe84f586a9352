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

import functools
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
    hash_key,
    load_settings,
    validated,
)

#: spaCy models used for names and locations when installed (largest first).
NER_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm")
#: A run of this many characters with no space, quote or backslash is an encoded blob (a base64
#: image, the packed plotly.js of a report): it is left as it is, as a mask would corrupt it.
BLOB_CHARS = 1000
#: Texts longer than this are analysed in pieces cut at line ends (spaCy's own limit is 1,000,000).
PIECE_CHARS = 100_000
#: Texts remembered with their redacted form (the same input is logged once per variant).
_MEMO_MAX = 50_000

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
        supported = set(_engine(_patterns(settings)).entities)
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
        engine = _engine(_patterns(settings))
        found = []
        for offset, piece in _pieces(text):
            for r in engine.analyze(piece, wanted, settings):
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
        engine = _engine(_patterns(settings))
        out = "".join(
            engine.rewrite(piece, wanted, settings) if analyse else piece for analyse, piece in _segments(text)
        )
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


def _pieces(text: str) -> Iterable[tuple[int, str]]:
    """(offset, piece) of at most :data:`PIECE_CHARS` characters, cut at line ends when possible."""
    start = 0
    while start < len(text):
        end = min(start + PIECE_CHARS, len(text))
        if end < len(text):
            cut = text.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        yield start, text[start:end]
        start = end


#: What the analyzer is built from: the extra patterns and the phone regions.
EngineKey = tuple[tuple[tuple[str, str, float], ...], tuple[str, ...]]


def _patterns(settings: PiiSettings) -> EngineKey:
    return tuple((p.entity, p.regex, p.score) for p in settings.patterns), settings.phone_regions


# -- the analyzer: built once per process ---------------------------------------------------------
_ENGINES: dict[EngineKey, _Engine] = {}
_ENGINE_LOCK = threading.Lock()


def _engine(key: EngineKey) -> _Engine:
    with _ENGINE_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _Engine(*key)
        return engine


@functools.cache
def ner_model() -> str | None:
    """The installed spaCy NER model used for names and locations, if any (looked up once)."""
    from importlib.util import find_spec

    return next((name for name in NER_MODELS if find_spec(name) is not None), None)


def use_bundled_suffix_list() -> None:
    """Make tldextract (Presidio's e-mail check) read the public suffix list it ships with:
    by default it downloads the list at first use."""
    import tldextract.tldextract as tld

    if getattr(tld.TLD_EXTRACTOR, "suffix_list_urls", None):
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class _Engine:
    """Presidio's analyzer and anonymizer with the workbench's recognizers."""

    def __init__(self, patterns: tuple[tuple[str, str, float], ...], regions: tuple[str, ...]) -> None:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
            UrlRecognizer,
        )
        from presidio_anonymizer import AnonymizerEngine

        from workbench.core.pii_recognizers import NoContext, inside_a_number, workbench_recognizers

        use_bundled_suffix_list()
        model = ner_model()
        nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model or "blank:en"}])
        if model is None:
            nlp_engine.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]  # tokens only: no download
        else:
            nlp_engine.load()
        pipeline: Any = nlp_engine.nlp["en"]  # type: ignore[index]
        pipeline.max_length = 2 * PIECE_CHARS
        recognizers = [
            EmailRecognizer(),
            PhoneRecognizer(supported_regions=regions),
            CreditCardRecognizer(),
            IbanRecognizer(),
            IpRecognizer(),
            UrlRecognizer(),
            *workbench_recognizers(patterns),
        ]
        if model is not None:
            recognizers.append(SpacyRecognizer(supported_entities=list(NER_ENTITIES)))
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
        enhancer = NoContext() if model is None else None  # a blank pipeline has no lemmas to enhance with
        self.analyzer = AnalyzerEngine(
            registry=registry, nlp_engine=nlp_engine, supported_languages=["en"], context_aware_enhancer=enhancer
        )
        # Without an NER model nothing reads the tokens (pattern recognizers read the text, and the
        # context enhancer is off), so each text skips tokenisation: a third of the time.
        self.artifacts: Any = None
        if model is None:
            from presidio_analyzer.nlp_engine import NlpArtifacts

            self.artifacts = NlpArtifacts([], pipeline(""), [], [], nlp_engine, "en")
        self.inside_a_number = inside_a_number
        self.anonymizer = AnonymizerEngine()
        self.entities = tuple(sorted(self.analyzer.get_supported_entities("en")))

    def analyze(self, text: str, entities: Sequence[str], settings: PiiSettings) -> list[Any]:
        """Presidio's findings, less those inside a longer number or token (chart data, hashes)."""
        results = self.analyzer.analyze(
            text,
            language="en",
            entities=[e for e in entities if e in self.entities],
            score_threshold=settings.score_threshold,
            allow_list=list(settings.allow) or None,
            nlp_artifacts=self.artifacts,
        )
        return [r for r in results if r.entity_type in NER_ENTITIES or not self.inside_a_number(text, r.start, r.end)]

    def rewrite(self, text: str, entities: Sequence[str], settings: PiiSettings) -> str:
        """``text`` with every finding rewritten by its entity's operator."""
        from presidio_anonymizer.entities import OperatorConfig

        out = []
        for _, piece in _pieces(text):
            results = self.analyze(piece, entities, settings)
            if not results:
                out.append(piece)
                continue
            key = hash_key()
            operators = {
                entity: OperatorConfig("custom", {"lambda": _operator(settings.operator(entity), entity, key)})
                for entity in {r.entity_type for r in results}
            }
            out.append(self.anonymizer.anonymize(piece, results, operators=operators).text)
        return "".join(out)


def _operator(operator: Operator, entity: str, key: bytes | None) -> Any:
    return lambda value: operator.apply(entity, value, key)
