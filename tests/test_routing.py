"""LiteLLM config.yaml model lists and routing: aliases, api_base, os.environ/NAME keys,
wildcards, direct vs litellm vs offline, unknown models."""

from __future__ import annotations

import pytest

from llmlab.errors import BadRequestError, ConfigError
from llmlab.proxy.config import Secret, load_model_list, safe_url
from llmlab.proxy.routing import Router

CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/MY_OPENAI_KEY
  - model_name: local-llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct
      api_base: http://127.0.0.1:8000
      timeout: 30
  - model_name: sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
      api_key: os.environ/MISSING_ANTHROPIC_KEY
      max_tokens: 1024
  - model_name: balanced
    litellm_params: {model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:9001/v1"}
  - model_name: balanced
    litellm_params: {model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:9002/v1"}
  - model_name: "groq/*"
    litellm_params: {model: "groq/*", api_key: literal-groq-key-123}
  - model_name: tuned
    litellm_params: {model: my-finetune, api_base: "http://user:pw@10.1.2.3:8000/v1?x=1"}
    model_info: {input_cost_per_token: 0.000002, output_cost_per_token: 0.000004}
router_settings:
  model_group_alias: {gpt4: gpt-4o, hidden-alias: {model: sonnet, hidden: true}}
litellm_settings:
  model_alias_map: {claude: sonnet}
environment_variables:
  MY_OPENAI_KEY: sk-from-config-env-1234
"""


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return load_model_list(path, [{"model_name": "inline", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1/"}}], environ={})


def test_litellm_config_yaml_is_read_unchanged(models):
    by_name = {d.model_name: d for d in models.deployments}
    gpt = by_name["gpt-4o"]
    assert (gpt.kind, gpt.provider, gpt.upstream_model) == ("direct", "openai", "gpt-4o")
    assert gpt.api_base == "https://api.openai.com/v1"
    assert gpt.api_key.reveal() == "sk-from-config-env-1234" and gpt.api_key_env == "MY_OPENAI_KEY"
    vllm = by_name["local-llama"]
    assert (vllm.kind, vllm.provider, vllm.upstream_model) == ("direct", "hosted_vllm", "meta-llama/Llama-3.1-8B-Instruct")
    assert vllm.api_base == "http://127.0.0.1:8000/v1" and vllm.params == {"timeout": 30}
    sonnet = by_name["sonnet"]
    assert (sonnet.kind, sonnet.provider, sonnet.upstream_model) == ("litellm", "anthropic", "anthropic/claude-sonnet-4-5-20250929")
    assert sonnet.api_key is None and sonnet.key_missing and sonnet.api_key_env == "MISSING_ANTHROPIC_KEY"
    assert sonnet.params == {"max_tokens": 1024}
    tuned = by_name["tuned"]
    assert (tuned.kind, tuned.provider) == ("direct", "openai")   # bare unknown name + api_base
    assert tuned.prices == {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000004}
    assert tuned.public_api_base == "http://10.1.2.3:8000/v1"      # no credentials, no query
    assert by_name["inline"].api_base == "http://127.0.0.1:9/v1"
    assert models.aliases == {"gpt4": "gpt-4o", "hidden-alias": "sonnet", "claude": "sonnet"}
    assert sorted(models.secrets) == ["literal-groq-key-123", "sk-from-config-env-1234"]


def test_secrets_never_show_in_repr(models):
    gpt = next(d for d in models.deployments if d.model_name == "gpt-4o")
    assert "sk-from-config" not in repr(gpt) and "sk-from-config" not in str(gpt.api_key)
    assert repr(Secret("abc", "X")) == "Secret(from X)"


def test_router_resolves_names_aliases_groups_and_wildcards(models):
    router = Router(models, environ={})
    assert router.resolve("gpt4").deployment.model_name == "gpt-4o"
    assert router.resolve("claude").deployment.model_name == "sonnet"
    bases = {router.resolve("balanced").deployment.api_base for _ in range(4)}
    assert bases == {"http://127.0.0.1:9001/v1", "http://127.0.0.1:9002/v1"}   # take turns
    groq = router.resolve("groq/llama-3.3-70b-versatile").deployment
    assert (groq.model, groq.kind, groq.api_key.reveal()) == ("groq/llama-3.3-70b-versatile", "litellm", "literal-groq-key-123")
    assert router.resolve("llmlab/offline").kind == "offline"


def test_unlisted_provider_model_goes_to_litellm_or_the_direct_path(models):
    router = Router(models, environ={"OPENAI_API_KEY": "sk-env-openai-999"})
    claude = router.resolve("anthropic/claude-haiku-4-5").deployment
    assert (claude.kind, claude.provider, claude.model) == ("litellm", "anthropic", "anthropic/claude-haiku-4-5")
    direct = router.resolve("openai/gpt-4.1-nano").deployment
    assert (direct.kind, direct.upstream_model, direct.api_base) == ("direct", "gpt-4.1-nano", "https://api.openai.com/v1")
    assert direct.api_key.reveal() == "sk-env-openai-999"
    assert "sk-env-openai-999" in models.secrets   # scrubbed from messages like any other key


@pytest.mark.parametrize("name", ["gpt-5-turbo-nonexistent", "nosuchprovider/model", "llmlab/unknown"])
def test_unknown_models_are_404_model_not_found(models, name):
    with pytest.raises(BadRequestError) as exc:
        Router(models, environ={}).resolve(name)
    assert (exc.value.status, exc.value.code, exc.value.param) == (404, "model_not_found", "model")
    assert "gpt-4o" in exc.value.message   # says what is configured


def test_models_list_shows_public_names_once(models):
    router = Router(models, environ={})
    names = router.public_names()
    assert names[:7] == ["gpt-4o", "local-llama", "sonnet", "balanced", "tuned", "inline", "gpt4"]
    assert "claude" in names and "hidden-alias" not in names and "groq/*" not in names
    assert names[-2:] == ["llmlab/offline", "llmlab/offline-embedding"]
    assert Router(models, offline=False, environ={}).public_names()[-1] == "claude"


def test_openai_default_key_only_goes_to_openai_itself(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_list:\n"
                    "  - {model_name: a, litellm_params: {model: openai/gpt-4o}}\n"
                    "  - {model_name: b, litellm_params: {model: openai/gpt-4o, api_base: 'http://127.0.0.1:5/v1'}}\n")
    m = load_model_list(path, environ={"OPENAI_API_KEY": "sk-should-stay-home"})
    a, b = m.deployments
    assert a.api_key.reveal() == "sk-should-stay-home"
    assert b.api_key is None


@pytest.mark.parametrize("text,fragment", [
    ("model_list: 5", "model_list must be a list"),
    ("model_list:\n  - model_name: x\n", "litellm_params.model"),
    ("model_list:\n  - litellm_params: {model: openai/x}\n", "model_name"),
    ("model_list:\n  - {model_name: x, litellm_params: {model: hosted_vllm/x}}\n", "needs an api_base"),
    ("model_list:\n  - {model_name: x, litellm_params: {model: openai/x, api_key: 5}}\n", "api_key must be a string"),
    ("model_list: [\n", "not valid YAML"),
    ("- just a list\n", "must hold a mapping"),
    ("router_settings: {model_group_alias: {a: 5}}\n", "alias 'a'"),
])
def test_bad_config_files_name_the_problem(tmp_path, text, fragment):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_model_list(path, environ={})
    assert fragment in str(exc.value)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read routing config"):
        load_model_list(tmp_path / "nope.yaml")


def test_safe_url_drops_credentials_and_query():
    assert safe_url("https://u:p@host:1/v1?key=abc") == "https://host:1/v1"
    assert safe_url(None) is None
