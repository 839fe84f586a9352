"""A lean HTTP path to OpenAI-compatible chat servers (vLLM, llama.cpp server, LM Studio...).

``litellm.acompletion`` costs about 6 ms of CPU per call on this project's
2-core reference machine: it builds the request in a worker thread, goes through
the OpenAI SDK, prices the response and runs its logging machinery. Against a
remote model answering in seconds that is noise. Against a self-hosted server
answering 160 calls a second it saturates a core, and the engine, not the model,
becomes the bottleneck.

``RunSettings(transport="openai-compatible")`` sends those calls with one pooled
aiohttp session instead (about 0.4 ms of CPU per call). LLM judges still call
their models through litellm. litellm still resolves
the model string and prices the tokens (:func:`litellm.cost_per_token`); the
runner's own retries, rate-limit backoff, cache and budget work unchanged. What
this path does *not* do is litellm's parameter translation: params are sent as
they are, so it is meant for servers that speak the OpenAI chat API natively.
"""

from __future__ import annotations

import json
import math
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import litellm
from multidict import CIMultiDict

from workbench.core.exceptions import ModelError

#: The setting's value that selects this transport.
TRANSPORT = "openai-compatible"
#: litellm providers whose servers speak the OpenAI chat API as it is.
COMPATIBLE_PROVIDERS = frozenset({"openai", "hosted_vllm", "lm_studio", "custom_openai", "aiohttp_openai", "llamafile"})
#: Params that configure the connection rather than the request body.
_CONNECTION_PARAMS = ("api_base", "base_url", "api_key", "extra_headers", "timeout", "num_retries", "max_retries")
#: litellm-only params this transport cannot honour.
_UNSUPPORTED_PARAMS = ("mock_response", "custom_llm_provider", "stream", "drop_params")
#: How much of an error body goes into the message.
_BODY_SHOWN = 300


class ProviderHTTPError(Exception):
    """The server answered with an HTTP error status, or a 200 that is not a completion.

    ``status_code`` and ``headers`` (``Retry-After``, looked up case-insensitively)
    are what the runner's retry policy reads, as it does on litellm's exceptions.
    """

    def __init__(self, status_code: int, message: str, headers: Mapping[str, str]) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = CIMultiDict(headers)


class ProviderConnectionError(ConnectionError):
    """The connection failed or dropped before a complete answer arrived (retried)."""


def check_compatible(model: str, params: Mapping[str, Any]) -> None:
    """Fail before any call if ``model`` cannot go through this transport.

    Raises:
        ModelError: naming the model, the problem and the fix.
    """
    provider = str(litellm.get_llm_provider(model)[1])
    fix = "or set settings.transport to 'litellm' (the default)"
    if provider not in COMPATIBLE_PROVIDERS:
        raise ModelError(
            f"model {model!r} (provider {provider!r}) cannot use transport {TRANSPORT!r}: it only reaches "
            f"servers speaking the OpenAI chat API ({', '.join(sorted(COMPATIBLE_PROVIDERS))}); {fix}"
        )
    if not (params.get("api_base") or params.get("base_url")):
        raise ModelError(
            f"model {model!r} needs an `api_base` param with transport {TRANSPORT!r} (the server's URL, "
            f"for example http://127.0.0.1:8000/v1); {fix}"
        )
    unsupported = [p for p in _UNSUPPORTED_PARAMS if p in params]
    if unsupported:
        raise ModelError(f"params {unsupported} of model {model!r} are litellm-only; remove them {fix}")
    sent = {k: v for k, v in params.items() if k not in _CONNECTION_PARAMS}
    try:
        json.dumps(sent)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"params of model {model!r} must be plain JSON to be sent as they are ({exc}); "
            f"write them as dicts and lists (e.g. a response_format JSON schema, not a pydantic class) {fix}"
        ) from exc


class OpenAICompatibleTransport:
    """An ``acompletion(model=, messages=, timeout=, **params)`` over one pooled aiohttp session.

    Returns a :class:`litellm.ModelResponse` whose ``_hidden_params["response_cost"]``
    is litellm's price for the tokens (``None`` when litellm has no price).
    Raises :class:`ProviderHTTPError`, :class:`ProviderConnectionError` or
    :class:`TimeoutError`, which the runner's retry policy classifies.

    Example:
        >>> transport = OpenAICompatibleTransport()  # doctest: +SKIP
        >>> response = await transport(model="hosted_vllm/qwen", messages=msgs,
        ...                            timeout=30, api_base="http://127.0.0.1:8000/v1")  # doctest: +SKIP
        >>> await transport.aclose()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._unpriced: set[str] = set()
        self._proxies: dict[str, str | None] = {}

    async def __call__(
        self, *, model: str, messages: Sequence[Mapping[str, Any]], timeout: float, **params: Any
    ) -> litellm.ModelResponse:
        name, provider = litellm.get_llm_provider(model)[:2]
        base = str(params.get("api_base") or params.get("base_url")).rstrip("/")
        headers = {"Content-Type": "application/json", **(params.get("extra_headers") or {})}
        key = params.get("api_key") or os.environ.get(f"{str(provider).upper()}_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {"model": str(name), "messages": list(messages)}
        body.update({k: v for k, v in params.items() if k not in _CONNECTION_PARAMS})
        body.update(body.pop("extra_body", None) or {})  # as the OpenAI SDK does: merged into the body
        url = f"{base}/chat/completions"
        if self._session is None:
            # No pool limit: the runner's per-model limiter bounds what is in flight.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        if url not in self._proxies:
            self._proxies[url] = env_proxy(url)
        try:
            async with self._session.post(
                url,
                data=json.dumps(body),
                headers=headers,
                proxy=self._proxies[url],
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    message = f"HTTP {response.status} from {url}: {raw[:_BODY_SHOWN].decode(errors='replace')}"
                    raise ProviderHTTPError(response.status, message, response.headers)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimeoutError(f"no answer from {url} within {timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            raise ProviderConnectionError(f"{type(exc).__name__} talking to {url}: {exc}") from exc
        result = _completion(raw, url)
        result._hidden_params = {"response_cost": self._cost(model, result)}
        return result

    def _cost(self, model: str, response: litellm.ModelResponse) -> float | None:
        """litellm's price for the response's tokens; None (unknown) is remembered per model."""
        if model in self._unpriced:
            return None
        usage = getattr(response, "usage", None)
        try:
            prompt, completion = litellm.cost_per_token(
                model=model,
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            )
        except Exception:  # litellm raises for models missing from its price map
            self._unpriced.add(model)
            return None
        cost = float(prompt) + float(completion)
        return None if math.isnan(cost) else cost

    async def aclose(self) -> None:
        """Close the pooled connections (the runner does it at the end of a run)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def env_proxy(url: str) -> str | None:
    """The proxy ``HTTP(S)_PROXY`` names for ``url``, unless ``NO_PROXY`` exempts its host.

    Looked up once per URL: aiohttp's ``trust_env`` would do it (and read ``~/.netrc``)
    in a worker thread on every request, which costs more than the request itself.
    """
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _completion(raw: bytes, url: str) -> litellm.ModelResponse:
    """Parse a 200 body; one that carries an error or no choice raises :class:`ProviderHTTPError`.

    Some proxies answer 200 with ``{"error": ...}``: recording that as an empty
    output would score and cache it, so it is an error (retried when its code says so).
    """
    shown = raw[:_BODY_SHOWN].decode(errors="replace")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
        status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else 502
        raise ProviderHTTPError(status, f"error in a 200 answer from {url}: {shown}", {})
    choices = data.get("choices") if isinstance(data, dict) else None
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        raise ProviderHTTPError(502, f"{url} did not answer an OpenAI chat completion: {shown}", {})
    if not isinstance(choices[0].get("message"), dict):
        raise ProviderHTTPError(502, f"{url} answered a choice without a message: {shown}", {})
    return litellm.ModelResponse(**data)
