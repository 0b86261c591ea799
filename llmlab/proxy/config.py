"""Model lists in LiteLLM's proxy ``config.yaml`` shape, read unchanged.

    model_list:
      - model_name: fast                       # the name clients send
        litellm_params:
          model: openai/gpt-4o-mini            # provider/model, as LiteLLM spells it
          api_base: https://api.openai.com/v1  # optional
          api_key: os.environ/OPENAI_API_KEY   # read from the server's environment
        model_info:                            # optional per-deployment prices
          input_cost_per_token: 1.5e-7
    router_settings:
      model_group_alias: {cheap: fast}         # aliases (litellm_settings.model_alias_map too)
    environment_variables: {NAME: value}       # consulted before os.environ for os.environ/NAME

Provider keys are wrapped in :class:`Secret`, whose ``repr`` never shows the value, so a key
cannot reach a log line or an error message by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError
from ..pricing import bundled_table

OFFLINE_CHAT = "llmlab/offline"
OFFLINE_EMBEDDING = "llmlab/offline-embedding"
OFFLINE_MODELS = (OFFLINE_CHAT, OFFLINE_EMBEDDING)

# Providers whose HTTP API is OpenAI's own shape: forwarded directly (the fast path).
# Everything else goes through litellm, which knows each provider's quirks.
DIRECT_PROVIDERS = {"openai", "custom_openai", "openai_like", "hosted_vllm", "lm_studio", "llamafile"}
DEFAULT_API_BASES = {
    "openai": "https://api.openai.com/v1",
    "lm_studio": "http://localhost:1234/v1",
    "llamafile": "http://localhost:8080/v1",
}
OPENAI_DEFAULT_BASE = DEFAULT_API_BASES["openai"]
# litellm_params handled here; the rest are passed to litellm (or ignored on the direct path).
_PRICE_KEYS = (
    "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
    "cache_creation_input_token_cost", "cache_creation_input_token_cost_above_1hr",
)


class Secret:
    """A provider key. ``str()``/``repr()`` never reveal it; ``reveal()`` does."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "config"):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self.source})"

    __str__ = __repr__


@dataclass
class Deployment:
    """One entry of the model list: where a public model name is served."""

    model_name: str                 # what clients send (may contain one '*')
    model: str                      # LiteLLM's model string, e.g. "openai/gpt-4o-mini"
    provider: str | None            # "openai", "anthropic", "llmlab", ...
    kind: str                       # "direct" | "litellm" | "offline"
    upstream_model: str             # the name sent to the provider
    api_base: str | None = None
    api_key: Secret | None = None
    api_key_env: str | None = None  # the variable named by os.environ/NAME (for health)
    key_missing: bool = False       # os.environ/NAME named a variable that is not set
    params: dict[str, Any] = field(default_factory=dict)   # other litellm_params
    prices: dict[str, Any] | None = None                     # per-deployment price keys
    hidden: bool = False
    safe_api_base: str | None = field(default=None, init=False)  # no credentials, no query

    def __post_init__(self):
        self.safe_api_base = safe_url(self.api_base)

    @property
    def public_api_base(self) -> str | None:
        """api_base without credentials or query string: safe to record and show."""
        return self.safe_api_base


@dataclass
class ModelList:
    deployments: list[Deployment] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    hidden_aliases: set[str] = field(default_factory=set)
    secrets: list[str] = field(default_factory=list)   # every key value, for scrubbing


def safe_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def load_model_list(config_file: str | os.PathLike | None = None,
                    inline: list[dict] | None = None, *,
                    environ: dict[str, str] | None = None) -> ModelList:
    """Read a LiteLLM ``config.yaml`` (if given) and an inline model list into one ModelList."""
    env = dict(os.environ if environ is None else environ)
    entries: list[tuple[str, dict]] = []
    aliases: dict[str, Any] = {}
    if config_file:
        path = Path(config_file).expanduser()
        data = _read_yaml(path)
        extra_env = data.get("environment_variables") or {}
        if not isinstance(extra_env, dict):
            raise ConfigError(f"{path}: environment_variables must be a mapping")
        env = {**env, **{str(k): str(v) for k, v in extra_env.items()}}
        models = data.get("model_list") or []
        if not isinstance(models, list):
            raise ConfigError(f"{path}: model_list must be a list of entries")
        entries += [(f"{path}: model_list[{i}]", e) for i, e in enumerate(models)]
        for section, key in (("router_settings", "model_group_alias"),
                             ("litellm_settings", "model_alias_map")):
            part = (data.get(section) or {}).get(key) or {}
            if not isinstance(part, dict):
                raise ConfigError(f"{path}: {section}.{key} must be a mapping")
            aliases.update(part)
    for i, e in enumerate(inline or []):
        entries.append((f"LLMLabApp.model_list[{i}]", e))

    out = ModelList()
    for where, entry in entries:
        dep = parse_entry(entry, where, env)
        out.deployments.append(dep)
        if dep.api_key is not None:
            out.secrets.append(dep.api_key.reveal())
    for alias, target in aliases.items():
        if isinstance(target, dict):  # LiteLLM: {"model": name, "hidden": true}
            if target.get("hidden"):
                out.hidden_aliases.add(str(alias))
            target = target.get("model")
        if not isinstance(target, str) or not target:
            raise ConfigError(f"alias {alias!r} must name a model_name")
        out.aliases[str(alias)] = target
    return out


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read routing config {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping with a model_list")
    return data


def parse_entry(entry: Any, where: str, env: dict[str, str]) -> Deployment:
    """One ``model_list`` entry -> Deployment (ConfigError naming ``where`` if it is wrong)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with model_name and litellm_params")
    name = entry.get("model_name")
    params = entry.get("litellm_params")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: model_name must be a non-empty string")
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        raise ConfigError(f"{where}: litellm_params.model must be a string such as 'openai/gpt-4o'")
    params = dict(params)
    model = params.pop("model")
    api_base = params.pop("api_base", None) or params.pop("base_url", None)
    key_spec = params.pop("api_key", None)
    api_key, key_env, missing = _resolve_key(key_spec, where, env)
    info = entry.get("model_info") or {}
    if not isinstance(info, dict):
        raise ConfigError(f"{where}: model_info must be a mapping")
    prices = {k: info[k] for k in _PRICE_KEYS if info.get(k) is not None}
    prices.update({k: params.pop(k) for k in _PRICE_KEYS if params.get(k) is not None})
    for k in _PRICE_KEYS:
        params.pop(k, None)
    provider, upstream_model = split_provider(model)
    kind = kind_for(provider, api_base)
    if provider is None:
        provider = "openai" if kind == "direct" else None
    if kind == "direct":
        api_base = _direct_base(provider, api_base, where)
        if api_key is None and api_base == OPENAI_DEFAULT_BASE and env.get("OPENAI_API_KEY"):
            # LiteLLM's default; only for OpenAI's own endpoint, so the OpenAI key never goes
            # to another host by accident.
            api_key, key_env = Secret(env["OPENAI_API_KEY"], "OPENAI_API_KEY"), "OPENAI_API_KEY"
    elif kind == "offline":
        provider = "llmlab"
    return Deployment(
        model_name=name, model=model, provider=provider, kind=kind,
        upstream_model=upstream_model if kind != "litellm" else model,
        api_base=api_base, api_key=api_key, api_key_env=key_env, key_missing=missing,
        params=params, prices=prices or None, hidden=bool(info.get("hidden", False)),
    )


def _resolve_key(spec: Any, where: str, env: dict[str, str]) -> tuple[Secret | None, str | None, bool]:
    if spec is None or spec == "":
        return None, None, False
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: api_key must be a string (or os.environ/NAME)")
    if spec.startswith("os.environ/"):
        name = spec.split("/", 1)[1]
        value = env.get(name)
        if not value:
            return None, name, True
        return Secret(value, name), name, False
    return Secret(spec, "config"), None, False


def split_provider(model: str) -> tuple[str | None, str]:
    """("anthropic", "claude-haiku-4-5") from "anthropic/claude-haiku-4-5"; bare names look up
    the provider in LiteLLM's table."""
    if model in OFFLINE_MODELS:
        return "llmlab", model
    if "/" in model:
        head, rest = model.split("/", 1)
        if head in known_providers():
            return head, rest
    entry = bundled_table().get(model)
    if entry and entry.get("litellm_provider"):
        prov = entry["litellm_provider"]
        return ("openai" if prov in ("openai", "text-completion-openai") else prov), model
    return None, model


def kind_for(provider: str | None, api_base: str | None) -> str:
    if provider == "llmlab":
        return "offline"
    if provider in DIRECT_PROVIDERS:
        return "direct"
    if provider is None and api_base:
        return "direct"  # an unknown bare name with its own endpoint: OpenAI-compatible
    return "litellm"


def _direct_base(provider: str | None, api_base: str | None, where: str) -> str:
    base = api_base or DEFAULT_API_BASES.get(provider or "")
    if not base:
        raise ConfigError(f"{where}: provider {provider!r} needs an api_base (the server's /v1 URL)")
    base = base.rstrip("/")
    if provider == "hosted_vllm" and not base.endswith("/v1"):
        base += "/v1"  # as LiteLLM does for vLLM servers
    return base


_extra_providers = DIRECT_PROVIDERS | {
    "llmlab", "ollama_chat", "huggingface", "vertex_ai_beta", "text-completion-openai",
    "azure", "bedrock", "gemini", "anthropic", "cohere", "mistral", "groq", "deepseek",
}
_providers_cache: set[str] | None = None


def known_providers() -> set[str]:
    """Provider prefixes LiteLLM understands (from its own price table, plus a few)."""
    global _providers_cache
    if _providers_cache is None:
        table = bundled_table()
        found = {v.get("litellm_provider") for v in table.values() if isinstance(v, dict)}
        _providers_cache = {p for p in found if isinstance(p, str)} | _extra_providers
    return _providers_cache
