"""What the PII link detects and how it rewrites it: defaults, ``pii.yaml``, validation.

The settings come from, in order: the defaults here, ``pii.yaml`` in the project
root (or the file ``$WORKBENCH_PII_CONFIG`` names), then
``REDACTOR.pii.configure(...)`` in the process. A file is validated with
pydantic: a bad field is named with the file and how to fix it, before any run.

Example ``pii.yaml``::

    entities: [EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, RU_PASSPORT, RU_INN, ORDER_ID]
    operators:
      EMAIL_ADDRESS: hash          # HMAC-SHA256 with $WORKBENCH_PII_KEY: a stable pseudonym
      CREDIT_CARD: {type: mask, keep_last: 4}
    patterns:                      # more order-id shapes (or any entity of your own)
      - {entity: ORDER_ID, regex: "\\bSHOP-\\d{6,}\\b"}
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.core.exceptions import ConfigError
from workbench.util.paths import project_root

#: The environment variable naming a ``pii.yaml`` elsewhere than the project root.
CONFIG_ENV = "WORKBENCH_PII_CONFIG"
#: The environment variable holding the key of the ``hash`` operator.
KEY_ENV = "WORKBENCH_PII_KEY"

#: Detected by default: pattern recognizers that need no NER model.
DEFAULT_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "RU_PASSPORT",
    "RU_INN",
    "ORDER_ID",
)
#: Also detected by default when a spaCy NER model is installed (see :mod:`workbench.core.pii`).
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION")
#: Available on request (``entities=[..., "URL"]``): links in prompts and params are rarely personal.
OPTIONAL_ENTITIES: tuple[str, ...] = ("URL",)

#: Marketplace order ids found without any configuration; ``patterns:`` adds more.
DEFAULT_ORDER_PATTERNS: tuple[str, ...] = (
    r"(?<![\w-])\d{8}-\d{4}(?:-\d{1,2})?(?![\w-])",  # posting numbers: 12345678-0001-1
    r"(?<![\w-])(?:WB|OZ|YM|AE)-?\d{7,14}(?![\w-])",  # marketplace prefix + digits: WB-123456789
    # after the word (заказ, order): 6-25 letters, digits and dashes, at least one a digit
    r"(?i)(?:заказ[а-я]*|order)\s*(?:№|#|no\.?|nr\.?|number|номер)?\s*:?\s*"
    r"(?P<pii>(?=[A-Z0-9-]{0,24}\d)[A-Z0-9][A-Z0-9-]{5,24})(?![\w-])",
)


class Operator(BaseModel):
    """How one entity is rewritten.

    ``replace``: ``<EMAIL_ADDRESS>`` (or ``value``); ``mask``: ``*`` for every character
    but the last ``keep_last``; ``hash``: ``<EMAIL_ADDRESS_1f2e3d4c5b>``, an HMAC-SHA256
    keyed with ``$WORKBENCH_PII_KEY``, so the same customer is the same pseudonym in
    every run (and cannot be reversed without the key).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["replace", "mask", "hash"] = "replace"
    value: str | None = None
    keep_last: int = Field(default=0, ge=0)
    char: str = Field(default="*", min_length=1, max_length=1)

    def apply(self, entity: str, text: str, key: bytes | None) -> str:
        """``text`` (a detected ``entity``) rewritten."""
        if self.type == "mask":
            kept = text[len(text) - self.keep_last :] if self.keep_last else ""
            return self.char * (len(text) - len(kept)) + kept
        if self.type == "hash":
            if key is None:
                raise ConfigError(no_key_message(entity))
            digest = hmac.new(key, normalized(entity, text).encode(), hashlib.sha256).hexdigest()[:10]
            return f"<{entity}_{digest}>"
        return self.value if self.value is not None else f"<{entity}>"


class Pattern(BaseModel):
    """A regular expression for an entity (e.g. an order-id shape). A named group ``pii``,
    when the regex has one, is what is rewritten; else the whole match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str = Field(min_length=1)
    regex: str = Field(min_length=1)
    score: float = Field(default=0.85, gt=0, le=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from exc
        if compiled.search("") is not None:
            raise ValueError(f"{value!r} matches the empty string; it would match everywhere")
        return value

    @field_validator("entity")
    @classmethod
    def _entity_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
            raise ValueError(f"{value!r} must be an upper-case name such as ORDER_ID")
        return value


class PiiSettings(BaseModel):
    """The PII link's settings (the shape of ``pii.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    entities: tuple[str, ...] | None = None  # None: DEFAULT_ENTITIES (+ NER_ENTITIES with a model)
    operators: dict[str, Operator] = Field(default_factory=dict)
    default_operator: Operator = Field(default_factory=Operator)
    patterns: tuple[Pattern, ...] = ()
    score_threshold: float = Field(default=0.4, ge=0, le=1)
    allow: tuple[str, ...] = ("127.0.0.1", "0.0.0.0", "::1")  # loopback addresses are nobody's
    # Where numbers written without "+country" are read as phones (each region costs ~0.4 ms a text);
    # a number written with "+" is found whatever this says.
    phone_regions: tuple[str, ...] = ("RU",)

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import phonenumbers

        unknown = [r for r in value if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown region(s) {unknown}; use two-letter codes such as RU, US, GB, DE")
        return value

    @field_validator("operators", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        """``EMAIL_ADDRESS: hash`` is short for ``{type: hash}``."""
        if isinstance(value, dict):
            return {k: ({"type": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @field_validator("default_operator", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    def operator(self, entity: str) -> Operator:
        return self.operators.get(entity, self.default_operator)

    def uses_hash(self) -> list[str]:
        """The entities whose operator is ``hash`` (``*`` for the default operator)."""
        found = [e for e, op in self.operators.items() if op.type == "hash"]
        return found + (["*"] if self.default_operator.type == "hash" else [])


def normalized(entity: str, text: str) -> str:
    """The form two spellings of one value share: digits only for numbers, lower case for the rest.

    ``+7 (912) 345-67-89`` and ``89123456789`` are one phone; the hash operator and
    :class:`~workbench.scorers.NoPiiLeak` compare values in this form.
    """
    digits = re.sub(r"\D", "", text)
    if entity in ("PHONE_NUMBER", "CREDIT_CARD", "RU_PASSPORT", "RU_INN") and len(digits) >= 6:
        if entity == "PHONE_NUMBER" and len(digits) == 11 and digits[0] in "78":
            digits = "7" + digits[1:]  # 8 (912) ... and +7 (912) ... are one number
        return digits
    return re.sub(r"\s+", "", text).lower()


def no_key_message(entity: str) -> str:
    return (
        f"the PII operator for {entity!r} is 'hash', but ${KEY_ENV} is not set; set it to a secret "
        "(the same one in every run keeps pseudonyms stable), or choose 'replace' or 'mask'"
    )


def hash_key() -> bytes | None:
    """The ``hash`` operator's key, from ``$WORKBENCH_PII_KEY``."""
    value = os.environ.get(KEY_ENV)
    return value.encode() if value else None


def config_path() -> Path | None:
    """``$WORKBENCH_PII_CONFIG`` (which must exist), else ``pii.yaml`` in the project root when there is one."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"${CONFIG_ENV} names {named!r}, which is not a file; fix the path or unset it")
        return path
    path = project_root() / "pii.yaml"
    return path if path.is_file() else None


def load_settings(path: str | Path | None = None) -> PiiSettings:
    """The settings of ``path`` (default: :func:`config_path`), or the defaults when there is no file.

    Raises:
        ConfigError: the file is not YAML, or a field is invalid (named, with the file).
    """
    path = Path(path) if path is not None else config_path()
    if path is None:
        return PiiSettings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"PII settings {str(path)!r} are not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"PII settings {str(path)!r} must be a mapping (entities:, operators:, patterns:...)")
    return validated(data, where=f"PII settings {str(path)!r}")


def validated(data: dict[str, Any], *, where: str) -> PiiSettings:
    """``data`` as :class:`PiiSettings`; a bad field raises :class:`ConfigError` naming it and ``where``."""
    try:
        settings = PiiSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
    if settings.uses_hash() and hash_key() is None:
        raise ConfigError(f"{where}: {no_key_message(settings.uses_hash()[0])}")
    return settings
