"""Prompt variants: the thing an A/B experiment compares.

A :class:`PromptVariant` is a named, serializable prompt: an optional system
message, a user prompt template, optional few-shot examples and model
parameters. The model itself is chosen at run time, so one variant can be run
on many models. Templates use Jinja2 syntax (``{{ review }}``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from workbench.core.conversation import history_turns
from workbench.core.exceptions import MissingVariablesError, TemplateError
from workbench.core.images import check_names, user_content
from workbench.core.redaction import REDACTOR, without_secrets
from workbench.core.registry import registered_variant
from workbench.core.response_format import expand_response_format
from workbench.core.retrieval_spec import CONTEXT_VARIABLE, Retrieval

#: Key of a few-shot example that holds the answer the model should give.
EXAMPLE_OUTPUT_KEY = "output"

_ENV = jinja2.sandbox.SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    """Compile a template once: compiling costs far more than rendering."""
    return _ENV.from_string(source)


#: Jinja2's delimiters, opening -> closing.
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
_DELIMITER = re.compile(r"\{\{|\{%|\{#|\}\}|%\}|#\}")


def _syntax_problem(source: str, exc: jinja2.TemplateSyntaxError) -> str:
    """Where and what, in words: an unclosed ``{{`` is named on its own line, with the missing ``}}``.

    Jinja reports an unclosed ``{{ review`` where it gave up (often the next line, as
    "expected token 'end of print statement'"), which sends the reader to the wrong place.
    """
    opened: re.Match[str] | None = None
    for match in _DELIMITER.finditer(source):
        token = match.group()
        if token in _CLOSERS:
            if opened is not None:  # a new opening before the last one was closed
                break
            opened = match
        elif opened is not None and token == _CLOSERS[opened.group()]:
            opened = None
    if opened is None:
        return f"has a syntax error on line {exc.lineno}: {exc.message}"
    line = source.count("\n", 0, opened.start()) + 1
    text = source.splitlines()[line - 1].strip()
    closer = _CLOSERS[opened.group()]
    return f"has a syntax error on line {line}: missing `{closer}` to close the `{opened.group()}` in {text!r}"


def _is_missing(value: Any) -> bool:
    """True for None, NaN (pandas' empty cell) and the empty string."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return isinstance(value, str) and value == ""


@dataclass(frozen=True)
class PromptVariant:
    """A prompt to test: templates, few-shot examples and model parameters.

    Args:
        name: Short identifier used in tables, plots and MLflow run names.
        prompt: User message template (Jinja2), rendered once per dataset row.
        system: Optional system message template.
        examples: Few-shot examples. Each is a mapping with the template's
            variables plus ``"output"``, the answer; they are sent as earlier
            user/assistant turns before the real question.
        params: Model parameters passed to litellm (``temperature``,
            ``max_tokens``, ``stop``, ``seed``, ``response_format``...). ``response_format`` may name
            a schema file: ``{"json_schema": "data/listing.schema.json"}`` (see
            :mod:`workbench.core.response_format`).
        description: Free text for humans; does not change :attr:`version`.
        history: Column holding the conversation so far (e.g. ``"messages"``): its turns are sent
            as real chat turns between the few-shot examples and the user turn
            (see :mod:`workbench.core.conversation`). None: single-turn.
        retrieval: What to retrieve before the call (:class:`~workbench.core.retrieval_spec.Retrieval`,
            or its dict form); the chunks render as ``{{ context }}``, which the templates must use.
        images: Variables whose cells are images (a file path or an http(s)/data URL), sent as
            image parts after the user text (see :mod:`workbench.core.images`); not used in the
            templates, and not in few-shot examples.

    Example:
        >>> v = PromptVariant(
        ...     name="zero_shot",
        ...     prompt="Review: {{ review }}\\nSentiment:",
        ...     params={"temperature": 0, "max_tokens": 3},
        ... )
        >>> sorted(v.variables())
        ['review']
        >>> v.render({"review": "Great mug"})[-1]["content"]
        'Review: Great mug\\nSentiment:'
    """

    name: str
    prompt: str
    system: str | None = None
    examples: Sequence[Mapping[str, Any]] = ()
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold a key: see __repr__
    description: str = ""
    history: str | None = None
    retrieval: Retrieval | None = None
    images: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.retrieval, Mapping):
            object.__setattr__(self, "retrieval", Retrieval.from_dict(self.retrieval))
        if self.retrieval is not None and not isinstance(self.retrieval, Retrieval):
            raise TemplateError(
                f"variant {self.name!r}: retrieval must be a wb.Retrieval(...) or its dict form, got {self.retrieval!r}"
            )
        if not self.name or not isinstance(self.name, str):
            raise TemplateError(f"a variant needs a non-empty string name, got {self.name!r}")
        if self.history is not None and (not isinstance(self.history, str) or not self.history):
            raise TemplateError(
                f"variant {self.name!r}: history must name the column holding the earlier turns "
                f"(e.g. 'messages'), got {self.history!r}"
            )
        # Freeze containers so a variant (and its version) cannot change after creation.
        object.__setattr__(self, "examples", tuple(dict(e) for e in self.examples))
        object.__setattr__(self, "images", check_names(self.images, self.name))
        params = dict(self.params)
        if params.get("response_format") is not None:  # a schema file is read now: the cache key holds the schema
            params["response_format"] = expand_response_format(
                params["response_format"], where=f"variant {self.name!r}: params.response_format"
            )
        object.__setattr__(self, "params", params)
        # Credentials in params (api_key, extra_headers.Authorization...) are masked wherever
        # they would otherwise leave the process: error messages, MLflow, reports.
        REDACTOR.learn(self.params)
        for label, source in self._sources():
            try:
                _ENV.parse(source)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"variant {self.name!r}: {label} template {_syntax_problem(source, exc)}") from exc
        for i, example in enumerate(self.examples):
            if EXAMPLE_OUTPUT_KEY not in example:
                raise TemplateError(
                    f"variant {self.name!r}: few-shot example {i + 1} has no {EXAMPLE_OUTPUT_KEY!r} "
                    f"key; give each example the answer, e.g. {{'review': ..., 'output': 'positive'}}"
                )
            self._check_row(example, f"few-shot example {i + 1}", self._template_variables)
        if self.retrieval is not None and CONTEXT_VARIABLE not in self._template_variables:
            raise TemplateError(
                f"variant {self.name!r} retrieves context but no template uses it; "
                f"put {{{{ {CONTEXT_VARIABLE} }}}} in the prompt or system template"
            )

    def _sources(self) -> list[tuple[str, str]]:
        sources = [("prompt", self.prompt)]
        if self.system:
            sources.insert(0, ("system", self.system))
        return sources

    def variables(self) -> set[str]:
        """Names of the variables the templates use, the :attr:`history` column and the image variables."""
        return set(self._variables) | ({self.history} if self.history else set())

    @cached_property
    def _template_variables(self) -> frozenset[str]:
        names: set[str] = set()
        for _, source in self._sources():
            names |= jinja2.meta.find_undeclared_variables(_ENV.parse(source))
        return frozenset(names)

    @cached_property
    def _variables(self) -> frozenset[str]:
        """What a dataset row must give: with retrieval, the query's variables instead of ``context``;
        the image variables too."""
        names = self._template_variables | frozenset(self.images)
        if self.retrieval is None:
            return names
        return (names - {CONTEXT_VARIABLE}) | self.retrieval.variables()

    @cached_property
    def version(self) -> str:
        """Content hash of everything that changes the model's output.

        Two variants with the same templates, examples and params share a
        version whatever their names; editing any of them gives a new version.
        Credentials (``api_key``, ``extra_headers.Authorization``... at any depth) do not
        change the output, so they are left out.
        """
        content: dict[str, Any] = {
            "system": self.system,
            "prompt": self.prompt,
            "examples": list(self.examples),
            "params": without_secrets(self.params),
        }
        if self.retrieval is not None:  # only then: variants without retrieval keep their versions
            content["retrieval"] = self.retrieval.fingerprint()
        if self.history:  # likewise: single-turn versions stay as they were
            content["history"] = self.history
        if self.images:  # and versions without images
            content["images"] = list(self.images)
        payload = json.dumps(
            content,
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def _check_row(self, row: Mapping[str, Any], where: str | None, names: frozenset[str] | None = None) -> None:
        missing = {name for name in (self._variables if names is None else names) if _is_missing(row.get(name))}
        if missing:
            raise MissingVariablesError(self.name, missing, where)

    def _render_template(self, source: str, row: Mapping[str, Any]) -> str:
        values = {k: v for k, v in row.items() if not _is_missing(v)}
        try:
            return _compiled(source).render(values)
        except jinja2.TemplateError as exc:  # e.g. a filter applied to a bad value
            raise TemplateError(f"variant {self.name!r} failed to render: {exc}") from exc

    def render(
        self, row: Mapping[str, Any], *, where: str | None = None, base_dir: Path | None = None
    ) -> list[dict[str, Any]]:
        """Render the chat messages for one dataset row.

        Args:
            row: Variable values, usually one dataset row.
            where: Where the row came from, used in error messages
                (for example ``"data/reviews.csv row 17"``).
            base_dir: The folder image paths are relative to (the dataset file's; default: the
                working directory). With :attr:`images`, the user turn is a list of content parts.

        Returns:
            OpenAI-style messages: optional system, few-shot turns, the row's :attr:`history`
            turns (if the variant has one), then the user turn.

        Raises:
            MissingVariablesError: The row lacks one or more variables; every
                missing name is listed.
            DatasetError: The row's history is not a valid list of turns.
        """
        self._check_row(row, where)
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": self._render_template(self.system, row)})
        for example in self.examples:
            messages.append({"role": "user", "content": self._render_template(self.prompt, example)})
            messages.append({"role": "assistant", "content": str(example[EXAMPLE_OUTPUT_KEY])})
        if self.history:
            messages += history_turns(row.get(self.history), where=where, column=self.history)
        text = self._render_template(self.prompt, row)
        messages.append(
            {"role": "user", "content": user_content(text, row, self.images, base_dir=base_dir, where=where)}
        )
        return messages

    def __repr__(self) -> str:
        # A notebook that displays a variant stores its repr in the executed notebook: never a key.
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict(redacted=True).items())
        return f"PromptVariant({fields})"

    def to_dict(self, *, redacted: bool = False) -> dict[str, Any]:
        """Plain-data form, the same shape a variant has in an experiment YAML file.

        ``redacted=True`` masks credentials in params at any depth (``"***"``): the form that is logged.
        """
        data: dict[str, Any] = {"name": self.name, "prompt": self.prompt}
        if self.system:
            data["system"] = self.system
        if self.examples:
            data["examples"] = [dict(e) for e in self.examples]
        if self.params:
            data["params"] = REDACTOR.data(self.params) if redacted else dict(self.params)
        if self.description:
            data["description"] = self.description
        if self.history:
            data["history"] = self.history
        if self.retrieval is not None:
            data["retrieval"] = self.retrieval.to_dict()
        if self.images:
            data["images"] = list(self.images)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptVariant:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))

    @classmethod
    def from_registry(cls, uri: str, *, tracking_uri: str | None = None) -> PromptVariant:
        """The variant a version of MLflow's Prompt Registry holds.

        Every run registers its variants (as ``<experiment>.<variant>``, see
        :mod:`workbench.tracking.prompts`), so the prompt that is live is one alias away:
        ``PromptVariant.from_registry("prompts:/sentiment.few_shot@production")``.
        ``prompts:/<name>/<version>`` names a version; a prompt registered by
        ``mlflow.genai.register_prompt`` is read from its template (see
        :func:`workbench.core.registry.variant_data`). Masked credentials (``"***"``) are
        not restored: pass keys through the environment.
        """
        return cls.from_dict(registered_variant(uri, tracking_uri=tracking_uri))

    def chat_template(self) -> list[dict[str, str]]:
        """The variant as one chat template, as MLflow's Prompt Registry stores it: the system
        template, each few-shot example as the user and assistant turns the model sees, and the
        user template with its ``{{ variables }}`` left in.
        """
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for example in self.examples:
            messages.append({"role": "user", "content": self._render_template(self.prompt, example)})
            messages.append({"role": "assistant", "content": str(example[EXAMPLE_OUTPUT_KEY])})
        messages.append({"role": "user", "content": self.prompt})
        return messages
