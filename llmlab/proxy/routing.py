"""Which deployment serves a model name.

In order: an alias -> its model_name; an exact ``model_name`` (several deployments of one name
take turns); a wildcard ``model_name`` such as ``anthropic/*``; the built-in offline models;
a ``provider/model`` name LiteLLM knows (OpenAI-compatible providers on the direct path, the rest
through litellm). Anything else is an unknown model (404, OpenAI's ``model_not_found``).
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass

from ..errors import BadRequestError
from .config import (
    OFFLINE_CHAT, OFFLINE_EMBEDDING, OFFLINE_MODELS, OPENAI_DEFAULT_BASE, Deployment, ModelList,
    known_providers, parse_entry,
)


@dataclass(frozen=True)
class Route:
    """A resolved call target: the deployment plus the name the client asked for."""

    requested: str
    deployment: Deployment

    @property
    def kind(self) -> str:
        return self.deployment.kind


class Router:
    def __init__(self, models: ModelList, *, offline: bool = True,
                 environ: dict[str, str] | None = None):
        self.models = models
        self.offline = offline
        self._env = dict(os.environ if environ is None else environ)
        self._exact: dict[str, itertools.cycle] = {}
        self._groups: dict[str, list[Deployment]] = {}
        self._wildcards: list[tuple[re.Pattern, Deployment]] = []
        for dep in models.deployments:
            if "*" in dep.model_name:
                pattern = "^" + re.escape(dep.model_name).replace(r"\*", "(.*)") + "$"
                self._wildcards.append((re.compile(pattern), dep))
            else:
                self._groups.setdefault(dep.model_name, []).append(dep)
        self._exact = {name: itertools.cycle(deps) for name, deps in self._groups.items()}
        self._adhoc: dict[str, Deployment] = {}
        if offline:
            for name in OFFLINE_MODELS:
                if name not in self._groups:
                    self._adhoc[name] = parse_entry(
                        {"model_name": name, "litellm_params": {"model": name}}, name, {})

    def resolve(self, name: str) -> Route:
        target = self.models.aliases.get(name, name)
        group = self._exact.get(target)
        if group is not None:
            return Route(name, next(group))
        for pattern, dep in self._wildcards:
            m = pattern.match(target)
            if m:
                return Route(name, _expand(dep, m.group(1), target))
        dep = self._adhoc.get(target)
        if dep is None:
            dep = self._unlisted(target)
        return Route(name, dep)

    def _unlisted(self, name: str) -> Deployment:
        """A ``provider/model`` name that is not in the model list."""
        head = name.split("/", 1)[0] if "/" in name else None
        if head is None or head == "llmlab" or head not in known_providers():
            raise BadRequestError(
                f"The model `{name}` does not exist or is not configured on this llmlab proxy. "
                f"Configured: {', '.join(self.public_names()) or '(none)'}; any "
                "'provider/model' name LiteLLM knows (e.g. anthropic/claude-haiku-4-5) is also "
                "accepted.",
                status=404, param="model", code="model_not_found")
        entry: dict = {"model_name": name, "litellm_params": {"model": name}}
        if head == "openai":   # the direct path, as LiteLLM would: OpenAI's base and env key
            base = self._env.get("OPENAI_BASE_URL") or self._env.get("OPENAI_API_BASE")
            entry["litellm_params"]["api_base"] = base or OPENAI_DEFAULT_BASE
            if self._env.get("OPENAI_API_KEY"):
                entry["litellm_params"]["api_key"] = "os.environ/OPENAI_API_KEY"
        dep = parse_entry(entry, name, self._env)
        if dep.api_key is not None:
            self.models.secrets.append(dep.api_key.reveal())
        if len(self._adhoc) < 10_000:  # names come from clients: keep the cache bounded
            self._adhoc[name] = dep
        return dep

    def public_names(self) -> list[str]:
        names = [n for n, deps in self._groups.items() if not all(d.hidden for d in deps)]
        names += [a for a in self.models.aliases if a not in self.models.hidden_aliases]
        if self.offline:
            names += [n for n in (OFFLINE_CHAT, OFFLINE_EMBEDDING) if n not in self._groups]
        return list(dict.fromkeys(names))

    def listed(self) -> list[tuple[str, Deployment]]:
        """(public name, one deployment) per listed model, for ``/v1/models``."""
        out = []
        for name in self.public_names():
            target = self.models.aliases.get(name, name)
            deps = self._groups.get(target) or ([self._adhoc[target]] if target in self._adhoc else [])
            if deps:
                out.append((name, deps[0]))
        return out

    def deployments(self) -> list[Deployment]:
        return list(self.models.deployments) + [
            d for n, d in self._adhoc.items() if n in OFFLINE_MODELS]


def _expand(dep: Deployment, star: str, requested: str) -> Deployment:
    from dataclasses import replace

    model = dep.model.replace("*", star, 1) if "*" in dep.model else dep.model
    upstream = dep.upstream_model.replace("*", star, 1) if "*" in dep.upstream_model else dep.upstream_model
    return replace(dep, model_name=requested, model=model, upstream_model=upstream)


__all__ = ["Route", "Router"]
