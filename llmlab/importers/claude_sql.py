"""The compiled path of the Claude Code import: SQL that turns log text into request rows.

Everything per line runs inside DuckDB (split, filter, JSON parse, validation, pricing), so a
gigabyte of logs never meets a Python loop. The rules are ccusage 20's (see
docs/users/claude-code.md, "How lines are counted"):

- only lines containing ``"usage":{`` are considered; the last line of a file counts only once
  it ends with a newline (Claude Code may be writing it);
- a line is dropped, and counted, when it is not a JSON object; when one of ccusage's
  non-nullable fields is ``null``; when a token count is not a non-negative integer; when its
  timestamp is not ``YYYY-MM-DDTHH:MM:SS[.mmm](Z|+HH:MM)``; when ``version`` does not start like
  ``1.2.3``; when ``sessionId``, ``requestId``, ``message.id`` or ``message.model`` is empty;
  when ``speed`` or ``costUSD`` have the wrong type;
- ``usage.cache_creation`` (5m/1h) replaces ``cache_creation_input_tokens`` when present;
- ``usage.iterations[]`` entries of type ``advisor_message`` are messages of their own
  (``<message id>:advisor:<n>``), priced at their model.
"""

from __future__ import annotations

USAGE_MARKER = '"usage":{'

# Lines Claude Code writes one per content block repeat the message's usage; the row of a
# message is keyed by ccusage's dedup key so duplicates (and re-imports) collapse onto it.
REQUEST_ID_SQL = """
    CASE WHEN message_id IS NULL
           THEN 'claude-code:line:' || md5(log_file) || ':' || log_line
         WHEN provider_request_id IS NOT NULL
           THEN 'claude-code:' || message_id || ':req:' || provider_request_id
         ELSE 'claude-code:' || message_id || ':session:' || coalesce(log_session_id, session_id)
    END"""

# Which of two rows of one message is kept (ccusage's rule): a main-chain line beats a
# sidechain one, then the larger token total, then a line that names its speed, then the
# earlier line in path order. As an ORDER BY, the kept row sorts first.
KEEP_ORDER_SQL = ("coalesce(is_sidechain, false), total_tokens DESC, speed IS NULL, "
                  "log_file, log_line")
# The same order as one sortable value (for arg_min: a hash aggregate is cheaper than a window).
KEEP_KEY_SQL = ("(coalesce(is_sidechain, false), -total_tokens, speed IS NULL, log_file, "
                "log_line)")

# The values a line is read for, as raw JSON text: ``null``, ``"text"`` and ``12`` stay
# distinguishable (ccusage drops a line when one of its non-nullable fields is null, or a count
# is written as a string), and one json_extract parses the line once.
_PATHS = {
    "ts": "$.timestamp", "sid": "$.sessionId", "ver": "$.version", "req": "$.requestId",
    "side": "$.isSidechain", "api_err": "$.isApiErrorMessage", "cost": "$.costUSD",
    "cwd_raw": "$.cwd", "branch": "$.gitBranch", "mid": "$.message.id",
    "model_raw": "$.message.model", "inp": "$.message.usage.input_tokens",
    "outp": "$.message.usage.output_tokens", "cw": "$.message.usage.cache_creation_input_tokens",
    "cr": "$.message.usage.cache_read_input_tokens", "speed_raw": "$.message.usage.speed",
    "cc": "$.message.usage.cache_creation",
    "cw5": "$.message.usage.cache_creation.ephemeral_5m_input_tokens",
    "cw1": "$.message.usage.cache_creation.ephemeral_1h_input_tokens",
    "iters": "$.message.usage.iterations",
}
_PATH_LIST = "[" + ", ".join(f"'{p}'" for p in _PATHS.values()) + "]"
_FIELDS = ",\n         ".join(f"j[{i}]::VARCHAR AS {name}" for i, name in enumerate(_PATHS, 1))
_NOT_NULL = ("sid", "ver", "req", "api_err", "cost", "cwd_raw", "mid", "model_raw", "speed_raw",
             "cr", "cw", "cw5", "cw1")
_STRINGS = ("ts", "sid", "ver", "req", "cwd_raw", "mid", "model_raw")
_ITERATION_SHAPE = (
    '[{"type":"VARCHAR","model":"VARCHAR","input_tokens":"VARCHAR","output_tokens":"VARCHAR",'
    '"cache_creation_input_tokens":"VARCHAR","cache_read_input_tokens":"VARCHAR","speed":"VARCHAR"}]'
)
_TS_RE = r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]\d{2}:\d{2})"
_UINT_RE = "[0-9]{1,10}"  # ten billion tokens in one message is corrupt data
_NUMBER_RE = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"


def _uint_ok(expr: str, required: bool = False) -> str:
    """A token count (as text) is a non-negative integer; absent is fine unless required."""
    ok = f"coalesce(regexp_full_match({expr}, '{_UINT_RE}'), FALSE)"
    return ok if required else f"({expr} IS NULL OR {ok})"


def _uint(expr: str) -> str:
    return f"CASE WHEN regexp_full_match({expr}, '{_UINT_RE}') THEN {expr}::BIGINT END"


# A line's six token counts checked at once: each present one is a non-negative integer
# (one regular expression over them joined by commas, which no JSON number contains and every
# other JSON value that holds one brings brackets, braces or quotes with it), the first two
# present. Once a line has passed, its counts are plain casts (_line_uint). Matching each count
# twice (check, then value) cost ~8% of the parse statement's time.
_LINE_COUNTS = ("inp", "outp", "cw", "cr", "cw5", "cw1")
_LINE_COUNTS_OK = (
    "(inp IS NOT NULL AND outp IS NOT NULL AND regexp_full_match("
    f"concat_ws(',', {', '.join(_LINE_COUNTS)}), '{_UINT_RE}(,{_UINT_RE})*'))")


def _line_uint(expr: str) -> str:
    """A count of a line that passed the checks (``drop_reason`` IS NULL): valid, or absent."""
    return f"CASE WHEN drop_reason IS NULL THEN {expr}::BIGINT END"


def parse_sql(source: str, *, append: bool = False) -> str:
    """Candidate lines of ``source(filename, base_line, content)``, parsed, into ``cc_parsed``.

    Each file also yields one footer row (``is_footer``) saying how many bytes and lines of its
    content end in a newline (what was consumed); a cut-off last line is left for next time.
    A line that breaks a rule keeps its text (``dropped_line``) and a ``drop_reason``.
    """
    head = "INSERT INTO cc_parsed" if append else "CREATE OR REPLACE TEMP TABLE cc_parsed AS"
    nulls = " OR ".join(f"{c} = 'null'" for c in _NOT_NULL)
    not_strings = " OR ".join(f"NOT starts_with({c}, '\"')" for c in _STRINGS)
    return f"""
{head}
WITH l AS (
  SELECT filename, consumed, n_parts - 1 AS n_lines, base_line + idx AS line_no,
         CASE WHEN idx < n_parts THEN line END AS line
  FROM (
    SELECT filename, base_line, nbytes - strlen(parts[-1]) AS consumed, len(parts) AS n_parts,
           unnest(parts) AS line, generate_subscripts(parts, 1) AS idx
    FROM (SELECT filename, base_line, string_split(content, chr(10)) AS parts,
                 strlen(content) AS nbytes FROM {source})
  )
  -- the last part is the text after the last newline: a line still being written, or ''
  WHERE idx = n_parts OR contains(line, '{USAGE_MARKER}')
), p AS (
  SELECT *, CASE WHEN line IS NOT NULL AND regexp_matches(line, '^\\s*\\{{') AND json_valid(line)
                 THEN json_extract(line, {_PATH_LIST}) END AS j
  FROM l
), f AS (
  SELECT *, {_FIELDS},
         coalesce(starts_with(j[{list(_PATHS).index('cc') + 1}]::VARCHAR, '{{'), FALSE) AS has_cc
  FROM p
)
SELECT filename, line_no, line IS NULL AS is_footer, consumed, n_lines,
  TRY_CAST(ts->>'$' AS TIMESTAMPTZ) AS started_at,
  CASE
    WHEN line IS NULL THEN NULL
    WHEN j IS NULL THEN 'malformed JSON'
    WHEN {nulls} THEN 'null field'
    WHEN NOT {_LINE_COUNTS_OK} THEN 'bad token count'
    WHEN started_at IS NULL OR NOT regexp_full_match(ts, '"{_TS_RE}"')
      THEN 'bad timestamp'
    WHEN {not_strings} THEN 'bad field type'
    WHEN ver IS NOT NULL AND NOT regexp_matches(ver, '^"[0-9]+\\.[0-9]+\\.[0-9]') THEN 'bad version'
    WHEN sid = '""' OR req = '""' OR mid = '""' OR model_raw = '""' THEN 'empty id'
    WHEN speed_raw IS NOT NULL AND speed_raw NOT IN ('"standard"', '"fast"')
      OR cost IS NOT NULL AND NOT regexp_full_match(cost, '{_NUMBER_RE}')
      OR side IS NOT NULL AND side NOT IN ('true', 'false', 'null')
      OR api_err IS NOT NULL AND api_err NOT IN ('true', 'false')
      THEN 'bad field type'
  END AS drop_reason,
  CASE WHEN drop_reason IS NOT NULL THEN line END AS dropped_line,
  sid->>'$' AS log_session_id, ver->>'$' AS agent_version, req->>'$' AS provider_request_id,
  coalesce(side = 'true', false) AS is_sidechain,
  coalesce(api_err = 'true', false) AS api_error,
  TRY_CAST(cost AS DOUBLE) AS cost_usd_logged,
  cwd_raw->>'$' AS cwd, branch->>'$' AS git_branch,
  mid->>'$' AS message_id, model_raw->>'$' AS raw_model, speed_raw->>'$' AS speed,
  {_line_uint('inp')} AS input_tokens,
  {_line_uint('outp')} AS output_tokens,
  coalesce({_line_uint('cr')}, 0) AS cache_read_tokens,
  CASE WHEN has_cc THEN coalesce({_line_uint('cw5')}, 0)
       ELSE coalesce({_line_uint('cw')}, 0) END AS cache_write_5m_tokens,
  CASE WHEN has_cc THEN coalesce({_line_uint('cw1')}, 0) ELSE 0 END AS cache_write_1h_tokens,
  CASE WHEN contains(iters, 'advisor_message') THEN iters END AS iterations
FROM f
"""


# Advisor iterations of valid lines: each is a message of its own (ccusage numbers them among
# the advisor iterations only, and takes none from a line whose iterations do not all parse).
# List functions rather than window functions: per-line work, no partitioning.
_ITER_OK = (f"{_uint_ok('i.input_tokens', True)} AND {_uint_ok('i.output_tokens', True)} "
            f"AND {_uint_ok('i.cache_read_input_tokens')} AND {_uint_ok('i.cache_creation_input_tokens')}")
ADVISOR_SQL = f"""
CREATE OR REPLACE TEMP TABLE cc_advisor AS
WITH it AS (
  SELECT *, from_json(iterations, '{_ITERATION_SHAPE}') AS its
  FROM cc_parsed WHERE iterations IS NOT NULL AND drop_reason IS NULL
), adv AS (
  SELECT *, list_filter(its, lambda i: i.type = 'advisor_message' AND coalesce(i.model, '') <> '')
              AS advisors
  FROM it WHERE list_aggregate(list_transform(its, lambda i: {_ITER_OK}), 'bool_and')
), one AS (
  SELECT filename, line_no, started_at, log_session_id, agent_version, provider_request_id,
         is_sidechain, api_error, cwd, git_branch, message_id,
         unnest(advisors) AS i, generate_subscripts(advisors, 1) - 1 AS n
  FROM adv
)
SELECT filename, line_no, started_at, log_session_id, agent_version, provider_request_id,
       is_sidechain, api_error, cwd, git_branch, message_id || ':advisor:' || n AS message_id,
       i.model AS raw_model, i.speed AS speed,
       {_uint('i.input_tokens')} AS input_tokens, {_uint('i.output_tokens')} AS output_tokens,
       coalesce({_uint('i.cache_read_input_tokens')}, 0) AS cache_read_tokens,
       coalesce({_uint('i.cache_creation_input_tokens')}, 0) AS cache_write_5m_tokens,
       0::BIGINT AS cache_write_1h_tokens
FROM one
"""


# The same table, empty, for the common batch without advisor iterations.
NO_ADVISOR_SQL = ADVISOR_SQL.replace("WHERE iterations IS NOT NULL AND drop_reason IS NULL", "WHERE FALSE")


def _tier(tokens: str, base: str, above: str) -> str:
    return (f"CASE WHEN {above} IS NOT NULL AND {tokens} > 200000 "
            f"THEN 200000 * {base} + ({tokens} - 200000) * {above} ELSE {tokens} * {base} END")


# Cost in integer picodollars (rates are exact multiples of 1e-12 USD per token): exact, and an
# order of magnitude faster than DECIMAL arithmetic. Token counts are capped at 10 digits by
# the parser, so the sum stays far inside BIGINT.
_PICO = " + ".join([
    _tier("e.input_tokens", "r.input", "r.input_above"),
    _tier("e.output_tokens", "r.output", "r.output_above"),
    _tier("e.cache_read_tokens", "r.cache_read", "r.cache_read_above"),
    _tier("e.cache_write_5m_tokens", "r.cache_write_5m", "r.cache_write_5m_above"),
    _tier("e.cache_write_1h_tokens", "r.cache_write_1h", "r.cache_write_1h_above"),
])
_CALCULATED = f"""CASE WHEN e.speed = 'fast'
      THEN ((({_PICO})::HUGEINT * r.fast_milli)::DECIMAL(38,0) * 0.000000000000001)::DECIMAL(18,12)
      ELSE (({_PICO})::DECIMAL(18,0) * 0.000000000001)::DECIMAL(18,12) END"""

_ENTRY_COLUMNS = (
    "filename, line_no, started_at, log_session_id, agent_version, provider_request_id, "
    "is_sidechain, api_error, cwd, git_branch, message_id, raw_model, speed, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens")

# The request rows: one per dedup key, the row ccusage would keep among this batch's lines.
# A query, not a table: its result goes straight to Arrow (a temp table cost ~0.1 s per GB).
ROWS_SQL = f"""
WITH entries AS (
  SELECT {_ENTRY_COLUMNS}, cost_usd_logged
  FROM cc_parsed WHERE NOT is_footer AND drop_reason IS NULL
  UNION ALL
  SELECT {_ENTRY_COLUMNS}, NULL::DOUBLE AS cost_usd_logged FROM cc_advisor
), e AS (
  SELECT e.*, b.project, b.session_id, e.filename AS log_file, e.line_no AS log_line,
         CASE WHEN e.speed = 'fast' AND e.raw_model <> '<synthetic>' THEN e.raw_model || '-fast'
              ELSE e.raw_model END AS model,
         e.input_tokens + e.output_tokens + e.cache_read_tokens + e.cache_write_5m_tokens
           + e.cache_write_1h_tokens AS total_tokens
  FROM entries e JOIN cc_files b ON b.filename = e.filename
), priced AS (
  SELECT e.*,
         CASE WHEN e.raw_model = '<synthetic>' THEN 0::DECIMAL(18,12)
              WHEN r.input IS NOT NULL THEN {_CALCULATED} END AS calculated_cost_usd,
         e.cost_usd_logged::DECIMAL(18,12) AS recorded_cost_usd,
         r.source AS rate_source
  FROM e LEFT JOIN cc_rates r ON r.model = e.raw_model
), rows AS MATERIALIZED (
SELECT {REQUEST_ID_SQL} AS request_id, 'claude-code' AS source, started_at,
       CASE WHEN api_error THEN 'api_error' END AS error_type,
       raw_model AS model_requested, model,
       CASE WHEN raw_model IS NOT NULL THEN 'anthropic' END AS provider,
       input_tokens, output_tokens, cache_read_tokens,
       cache_write_5m_tokens + cache_write_1h_tokens AS cache_write_tokens,
       cache_write_5m_tokens, cache_write_1h_tokens, total_tokens,
       coalesce(recorded_cost_usd, calculated_cost_usd) AS cost_usd,
       CASE WHEN recorded_cost_usd IS NOT NULL THEN 'log:costUSD'
            WHEN raw_model = '<synthetic>' THEN 'synthetic' ELSE rate_source END AS pricing_source,
       project, session_id, []::VARCHAR[] AS tags,
       message_id, provider_request_id, log_session_id, cwd, git_branch, is_sidechain,
       agent_version, speed, recorded_cost_usd, calculated_cost_usd, log_file, log_line,
       row_number() OVER () AS rn
FROM priced
), kept AS (
  SELECT arg_min(rn, {KEEP_KEY_SQL}) AS rn FROM rows GROUP BY request_id
)
SELECT * EXCLUDE (rn) FROM rows SEMI JOIN kept USING (rn)
"""

ROW_COLUMNS = [
    "request_id", "source", "started_at", "error_type", "model_requested", "model", "provider",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cache_write_5m_tokens", "cache_write_1h_tokens", "total_tokens", "cost_usd",
    "pricing_source", "project", "session_id", "tags", "message_id", "provider_request_id",
    "log_session_id", "cwd", "git_branch", "is_sidechain", "agent_version", "speed",
    "recorded_cost_usd", "calculated_cost_usd", "log_file", "log_line",
]


def _better(new: str, old: str) -> str:
    """SQL: row ``new`` is kept over row ``old`` of the same message (KEEP_ORDER_SQL)."""
    side_n, side_o = f"coalesce({new}.is_sidechain, false)", f"coalesce({old}.is_sidechain, false)"
    return f"""(
      ({side_o} AND NOT {side_n})
      OR ({side_n} = {side_o} AND (
           {new}.total_tokens > {old}.total_tokens
        OR ({new}.total_tokens = {old}.total_tokens AND (
             ({new}.speed IS NOT NULL AND {old}.speed IS NULL)
          OR (({new}.speed IS NULL) = ({old}.speed IS NULL)
              AND ({new}.log_file, {new}.log_line) < ({old}.log_file, {old}.log_line)))))))"""


# Store side, inside the write lease. New messages are inserted; a message already stored is
# replaced only by a better row of it, so the result does not depend on which import saw which
# line first. (Two statements: an anti-join insert is far cheaper than INSERT .. ON CONFLICT.)
_COLS = ", ".join(ROW_COLUMNS)
INSERT_NEW_SQL = (
    f"INSERT INTO requests ({_COLS}) SELECT {_COLS} FROM cc_batch b "
    "WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = b.request_id)"
)
INSERT_ALL_SQL = f"INSERT INTO requests ({_COLS}) SELECT {_COLS} FROM cc_batch"
UPDATE_BETTER_SQL = (
    "UPDATE requests SET "
    + ", ".join(f"{c} = b.{c}" for c in ROW_COLUMNS if c != "request_id")
    + f" FROM cc_batch b WHERE requests.request_id = b.request_id AND {_better('b', 'requests')}"
)

# A /btw sidechain replay repeats a message under a new requestId with the same timestamp; it
# merges with the kept row of that message and session: a main-chain row wins, and among
# sidechain rows only the best is kept. Only messages of this batch that have a sidechain row
# (in the batch or already stored) are looked at.
REPLAYED_SQL = f"""
CREATE OR REPLACE TEMP TABLE cc_replayed AS
WITH ids AS (SELECT DISTINCT message_id FROM cc_batch WHERE message_id IS NOT NULL),
cand AS (
  SELECT message_id FROM cc_batch WHERE is_sidechain AND message_id IS NOT NULL
  UNION
  SELECT r.message_id FROM requests r JOIN ids USING (message_id)
  WHERE r.is_sidechain AND r.source = 'claude-code'
),
g AS (SELECT * FROM requests WHERE source = 'claude-code'
        AND message_id IN (SELECT message_id FROM cand))
SELECT DISTINCT r.request_id, r.started_at FROM g r
JOIN g o ON o.message_id = r.message_id AND o.started_at = r.started_at
 AND coalesce(o.log_session_id, o.session_id) = coalesce(r.log_session_id, r.session_id)
 AND o.request_id <> r.request_id
WHERE r.is_sidechain AND (NOT coalesce(o.is_sidechain, false) OR {_better('o', 'r')})
"""
DELETE_REPLAYED_SQL = "DELETE FROM requests WHERE request_id IN (SELECT request_id FROM cc_replayed)"
