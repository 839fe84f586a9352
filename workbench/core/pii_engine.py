"""Presidio's analyzer and anonymizer with the workbench's recognizers, built once per process.

Building it imports Presidio and spaCy and compiles every recognizer: about a
second, so :func:`engine` keeps one per set of settings that shape it (extra
patterns, phone regions). :mod:`workbench.core.pii` is the link that uses it.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from workbench.core.pii_config import NER_ENTITIES, Operator, PiiSettings, hash_key

#: spaCy models used for names and locations when installed (largest first).
NER_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm")
#: Texts longer than this are analysed in pieces cut at line ends (spaCy's own limit is 1,000,000).
PIECE_CHARS = 100_000

#: Deep-learning packages spaCy's thinc and Presidio import when they are installed (thinc
#: ``torch``, Presidio's Hugging Face pipe ``transformers``), though a pattern-and-CNN analyzer uses
#: neither: with them installed (the ``rag`` extra) building the analyzer took 400 MB instead of 40.
OPTIONAL_DEEP_LEARNING = ("torch", "transformers")

#: What the analyzer is built from: the extra patterns and the phone regions.
EngineKey = tuple[tuple[tuple[str, str, float], ...], tuple[str, ...]]


def pieces(text: str) -> Iterable[tuple[int, str]]:
    """(offset, piece) of at most :data:`PIECE_CHARS` characters, cut at line ends when possible."""
    start = 0
    while start < len(text):
        end = min(start + PIECE_CHARS, len(text))
        if end < len(text):
            cut = text.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        yield start, text[start:end]
        start = end


# -- the analyzer: built once per process ---------------------------------------------------------
_ENGINES: dict[EngineKey, Engine] = {}
_ENGINE_LOCK = threading.Lock()


def engine(key: EngineKey) -> Engine:
    """The analyzer for these patterns and phone regions, built on first use (about a second)."""
    with _ENGINE_LOCK:
        built = _ENGINES.get(key)
        if built is None:
            built = _ENGINES[key] = Engine(*key)
        return built


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


@contextlib.contextmanager
def without_deep_learning() -> Iterator[None]:
    """Inside, importing :data:`OPTIONAL_DEEP_LEARNING` packages fails as if they were not installed.

    thinc and Presidio import them in ``try/except ImportError`` and fall back without them
    (CPU, no Hugging Face NER pipe), which is all the analyzer needs. A package already imported
    (the process embedded texts first) is left alone: it costs nothing more. ``None`` in
    ``sys.modules`` is Python's documented way to make an import fail; the entries are removed
    afterwards, so the packages import normally later (retrieval's embeddings).
    """
    blocked = [name for name in OPTIONAL_DEEP_LEARNING if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


class Engine:
    """Presidio's analyzer and anonymizer with the workbench's recognizers (use :func:`engine`)."""

    def __init__(self, patterns: tuple[tuple[str, str, float], ...], regions: tuple[str, ...]) -> None:
        with without_deep_learning():
            self._build(patterns, regions)

    def _build(self, patterns: tuple[tuple[str, str, float], ...], regions: tuple[str, ...]) -> None:
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
        for _, piece in pieces(text):
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
