"""Realistic demo usage, written through the same journal and flusher as real traffic.

About 90 days of calls from six projects billed to four clients, across ten priced models of five
providers (plus one self-hosted model with no price, to show how unpriced calls are reported):
weekday and business-hour rhythm, streaming and plain calls, a few errors, prompt-cache and
reasoning tokens where those models have them, and a handful of stored conversations.

Deterministic for a given ``seed`` and ``end`` date; request ids depend on the seed and the
call's position only, so running it again adds nothing.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .pricing import Usage, default_pricebook
from .store import Store, UsageRecord

_NAMESPACE = uuid.UUID("6f1c1a52-6c0e-4d5e-9d0a-1f0b2ad7e0a1")


@dataclass(frozen=True)
class DemoModel:
    name: str
    provider: str
    weight: float
    prompt: tuple[int, int]     # typical input tokens (low, high)
    completion: tuple[int, int]
    cache: str = ""             # "anthropic" (read + write), "openai" (read share)
    reasoning: bool = False
    endpoint: str = "/v1/chat/completions"


MODELS = [
    DemoModel("gpt-4o", "openai", 10, (400, 6000), (80, 900), cache="openai"),
    DemoModel("gpt-4o-mini", "openai", 22, (200, 3000), (40, 600), cache="openai"),
    DemoModel("gpt-5-mini", "openai", 8, (300, 4000), (200, 1500), cache="openai", reasoning=True),
    DemoModel("o4-mini", "openai", 5, (500, 5000), (300, 2500), cache="openai", reasoning=True),
    DemoModel("claude-sonnet-4-5-20250929", "anthropic", 14, (1500, 20000), (150, 2000), cache="anthropic"),
    DemoModel("claude-haiku-4-5", "anthropic", 10, (300, 6000), (60, 800), cache="anthropic"),
    DemoModel("gemini/gemini-2.5-pro", "gemini", 6, (800, 12000), (200, 2000)),
    DemoModel("gemini/gemini-2.5-flash", "gemini", 9, (300, 5000), (60, 900)),
    DemoModel("mistral/mistral-large-latest", "mistral", 4, (300, 4000), (80, 900)),
    DemoModel("deepseek/deepseek-chat", "deepseek", 5, (300, 6000), (80, 1200)),
    DemoModel("text-embedding-3-small", "openai", 6, (100, 2000), (0, 0), endpoint="/v1/embeddings"),
    DemoModel("local/llama-3.1-8b-finetune", "vllm", 1, (200, 2000), (50, 500)),
]
PROJECTS = {  # project -> (client, share of traffic, users)
    "atlas": ("acme", 0.24, ["maria", "jonas"]),
    "support-copilot": ("acme", 0.20, ["lee", "maria"]),
    "billing-bot": ("globex", 0.16, ["sam"]),
    "docs-search": ("globex", 0.14, ["sam", "ana"]),
    "data-pipeline": ("initech", 0.16, ["priya"]),
    "research": ("internal", 0.10, ["jonas", "ana", "lee"]),
}
CONVERSATIONS = [
    ("Summarise this ticket in one line: customer cannot export invoices as PDF since Monday.",
     "Since Monday the customer's PDF invoice export fails; needs a fix or workaround."),
    ("Write a SQL query for the top 5 customers by revenue in October.",
     "SELECT customer, sum(amount) AS revenue FROM orders WHERE order_date >= '2026-10-01' "
     "AND order_date < '2026-11-01' GROUP BY customer ORDER BY revenue DESC LIMIT 5;"),
    ("Translate 'the shipment is delayed by two days' into German.",
     "Die Lieferung verzögert sich um zwei Tage."),
    ("Classify the sentiment: 'The new dashboard is fantastic, thanks!'", "positive"),
    ("Give me three names for an internal search tool.", "1. Finder 2. Lookout 3. Compass"),
]
ERRORS = [
    (429, "rate_limit_error", "Rate limit reached for requests"),
    (500, "api_error", "The server had an error while processing your request"),
    (504, "timeout", "Upstream timed out after 600s"),
    (400, "invalid_request_error", "This model's maximum context length is exceeded"),
]


def _pick(rng: random.Random, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def generate(*, days: int = 90, seed: int = 7, end: date | None = None, calls_per_weekday: int = 140,
             until: datetime | None = None):
    """Yield demo UsageRecords, oldest first; none started after ``until`` (the random draws
    stay the same, so the records before it do not depend on it)."""
    rng = random.Random(seed)
    pricebook = default_pricebook()
    end = end or datetime.now(timezone.utc).date()
    start = end - timedelta(days=days - 1)
    model_weights = [m.weight for m in MODELS]
    project_names = list(PROJECTS)
    project_weights = [PROJECTS[p][1] for p in project_names]
    conversations_left = 2 * len(CONVERSATIONS)
    seq = 0
    for d in range(days):
        day = start + timedelta(days=d)
        weekday = day.weekday() < 5
        # Gentle growth over the period plus day-to-day noise.
        volume = calls_per_weekday * (0.7 + 0.6 * d / max(days - 1, 1)) * (1 if weekday else 0.18)
        n = max(0, int(rng.gauss(volume, volume * 0.15)))
        for _ in range(n):
            seq += 1
            rec = _one(rng, pricebook, day, seq, seed, model_weights, project_names, project_weights,
                       store_bodies=conversations_left > 0 and rng.random() < 0.01)
            if until is None or rec.started_at <= until:
                yield rec
            if conversations_left > 0 and rng.random() < 0.01:
                conversations_left -= 1


def _one(rng, pricebook, day, seq, seed, model_weights, project_names, project_weights, store_bodies):
    m: DemoModel = _pick(rng, MODELS, model_weights)
    project = _pick(rng, project_names, project_weights)
    client, _, users = PROJECTS[project]
    hour = min(23.99, max(0.0, rng.gauss(13.5, 3.0)))
    started = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=hour)
    is_embedding = m.endpoint.endswith("embeddings")
    stream = (not is_embedding) and rng.random() < 0.6
    prompt = int(rng.uniform(*m.prompt))
    completion = 0 if is_embedding else int(rng.uniform(*m.completion))
    cache_read = cache_w5 = cache_w1 = reasoning = 0
    if m.cache == "openai" and rng.random() < 0.45:
        cache_read = (int(prompt * rng.uniform(0.3, 0.8)) // 128) * 128
    elif m.cache == "anthropic":
        cache_read = int(prompt * rng.uniform(0.5, 0.9)) if rng.random() < 0.7 else 0
        if rng.random() < 0.25:
            cache_w5 = int(prompt * rng.uniform(0.05, 0.3))
        if rng.random() < 0.05:
            cache_w1 = int(prompt * rng.uniform(0.05, 0.2))
    if m.reasoning:
        reasoning = int(completion * rng.uniform(0.3, 0.7))
    input_tokens = max(0, prompt - cache_read - cache_w5 - cache_w1)
    error = ERRORS[rng.randrange(len(ERRORS))] if rng.random() < 0.02 else None
    duration = max(80.0, rng.gauss(350 + completion * 9, 200))
    rec = UsageRecord(
        request_id=str(uuid.uuid5(_NAMESPACE, f"demo:{seed}:{seq}")),
        source="proxy",
        started_at=started,
        endpoint=m.endpoint,
        stream=stream,
        model_requested=m.name,
        model=m.name,
        provider=m.provider,
        project=project,
        client=client,
        user_id=rng.choice(users),
        session_id=f"demo-{project}-{started:%Y%m%d}-{rng.randrange(4)}",
        tags=["demo"],
        metadata={"demo": True},
    )
    if error:
        status, etype, message = error
        duration = rng.uniform(50, 600) if status != 504 else 600_000.0
        rec.status_code, rec.error_type, rec.error_message = status, etype, message
        rec.input_tokens = rec.output_tokens = rec.total_tokens = 0
        rec.cost_usd, rec.pricing_source = pricebook.cost(m.name, Usage())
    else:
        rec.status_code = 200
        rec.input_tokens, rec.output_tokens = input_tokens, completion
        rec.cache_read_tokens, rec.cache_write_tokens = cache_read, cache_w5 + cache_w1
        rec.cache_write_5m_tokens, rec.cache_write_1h_tokens = cache_w5, cache_w1
        rec.reasoning_tokens = reasoning
        rec.finalize_totals()
        rec.cost_usd, rec.pricing_source = pricebook.cost(
            m.name, Usage(input_tokens, completion, cache_read, cache_w5, cache_w1))
        if stream:
            rec.ttft_ms = round(rng.uniform(150, 900), 1)
    rec.duration_ms = round(duration, 1)
    rec.ended_at = started + timedelta(milliseconds=duration)
    if store_bodies and not error and not is_embedding:
        question, answer = CONVERSATIONS[rng.randrange(len(CONVERSATIONS))]
        rec.request_body = {"model": m.name, "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": question}]}
        rec.response_body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                          "finish_reason": "stop"}]}
    return rec


def seed_demo(store: Store, *, days: int = 90, seed: int = 7, end: date | None = None,
              progress: bool = True) -> dict:
    """Journal the demo records and flush them; returns counts. A demo ending today stops at
    the current time: a dashboard never shows calls from later today."""
    from tqdm.auto import tqdm

    now = datetime.now(timezone.utc)
    until = now if end is None or end >= now.date() else None

    writer = store.journal()
    n = 0
    bar = tqdm(total=days, desc="demo: journaling", unit="day", disable=not progress)
    last_day = None
    batch: list[bytes] = []
    for rec in generate(days=days, seed=seed, end=end, until=until):
        batch.append(rec.to_json_line())
        n += 1
        d = rec.started_at.date()
        if d != last_day:
            bar.update(1 if last_day is not None else 0)
            last_day = d
        if len(batch) >= 2000:
            writer.append(b"".join(batch))
            batch.clear()
    if batch:
        writer.append(b"".join(batch))
    bar.update(bar.total - bar.n)
    bar.close()
    store.ensure()
    result = store.flush()
    return {"generated": n, "inserted": result.inserted, "already_present": result.duplicates}


