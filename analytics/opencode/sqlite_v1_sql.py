"""The DuckDB SQL that parses OpenCode 1.x rows: messages, step-finish parts and tool parts.

The 1.x reader streams its rows from SQLite (as Arrow, through the ADBC driver) into DuckDB, which parses their
JSON once per row with `from_json` into a struct. A row is read in SQL only when it is as OpenCode writes it:
JSON that DuckDB parses, ids that are UTF-8, integers where OpenCode writes integers (no float, nothing beyond
64 bits), times inside 1970..9999, text where OpenCode writes text. Any other row is *odd*: SQL says why
(`reason`), and the reader reads it again the careful way, in Python, with the checks and repairs the other
readers use, so a damaged row is skipped or repaired and counted exactly as before, and never aborts a
statement. Each macro below is the SQL twin of a Python rule in `records.py`, named after it.

Two DuckDB planner habits are worked around here (checked by benchmarks/bench_load.py, which fails when a
DuckDB upgrade undoes them):
  * a filter on a parsed field is pushed below the projection that parses, so the JSON is parsed twice (once
    for the filter, once for the columns): the parsed struct is materialized in a staging table first, and
    every filter reads that table, never the stream;
  * an Arrow stream has no row count, so the planner takes it for the small side of a hash join and builds the
    hash table from it, text and all: the streamed tool parts are never joined in DuckDB. What each one needs
    from Python (its trace, its root session, its default start) travels with the rowid into SQLite's own
    `json_each` join, and comes back in the stream.
"""

from __future__ import annotations

from analytics.models import MAX_TIME_MS, MIN_TIME_MS
from analytics.opencode.sqlite_store import on_staging, text

# A quoted key or value such as "tool" cannot occur unescaped inside a JSON string, so these LIKE patterns keep
# every tool and step-finish part (whatever the spacing) and drop text and reasoning parts unparsed.
TOOL_FILTER = "data LIKE '%\"tool\"%'"
STEP_FILTER = "data LIKE '%\"step-finish\"%'"

_NUMBERS = '"input":"JSON","output":"JSON","reasoning":"JSON","cache":{"read":"JSON","write":"JSON"}'
MESSAGE_JSON = ('{"role":"JSON","parentID":"JSON","agent":"JSON","mode":"JSON","modelID":"JSON","providerID":"JSON",'
                '"time":{"completed":"JSON"},"error":{"name":"JSON","data":{"message":"JSON"},"message":"JSON"},'
                '"tokens":{' + _NUMBERS + '},"cost":"JSON","model":{"modelID":"JSON","providerID":"JSON"}}')
_STATE = '"status":"VARCHAR","title":"JSON","time":{"start":"JSON","end":"JSON"},"error":"JSON","input":"JSON"'
PART_HEAD_JSON = '{"type":"JSON","tool":"JSON","state":{' + _STATE + '},"tokens":{' + _NUMBERS + '},"cost":"JSON"}'
PART_JSON = '{"tool":"JSON","state":{' + _STATE + ',"output":"JSON"}}'  # what a tool span needs, output included

# The staging reads each field the parse gives as its raw JSON text (`from_json` to JSON keeps it, minified, numbers
# as written; SQL NULL for null or missing) and tells its kind from that text with string functions: parsing each
# field again (`json_type`, `->>`, a cast from JSON) for every check took most of the staging's time.
MACROS = f"""
-- as_str: the text of a JSON string (unescaped only when it holds an escape), NULL for any other value
CREATE MACRO jstr(j) AS CASE WHEN starts_with(j::VARCHAR, '"') THEN
    CASE WHEN contains(j::VARCHAR, '\\') THEN j ->> '$' ELSE substr(j::VARCHAR, 2, length(j::VARCHAR) - 2) END END;
-- text, or nothing: what OpenCode writes where it writes text
CREATE MACRO jstr_ok(j) AS j IS NULL OR starts_with(j::VARCHAR, '"');
-- a number: an integer, a float, or the NaN and Infinity of JSON5 (which DuckDB reads)
CREATE MACRO jnumber(j) AS regexp_matches(j::VARCHAR, '^-?[0-9NI]');
-- an integer that surely fits 64 bits (as OpenCode writes its figures); anything longer is read by Python
CREATE MACRO jinteger(j) AS regexp_full_match(j::VARCHAR, '-?[0-9]{{1,18}}');
-- an integer as OpenCode writes one, or no number at all: a float or a longer number is odd
CREATE MACRO jint_ok(j) AS coalesce(NOT jnumber(j) OR jinteger(j), true);
-- as_int for the values jint_ok lets through: the integer, or NULL (null, a boolean, text, a list, an object)
CREATE MACRO jint(j) AS CASE WHEN jinteger(j) THEN CAST(j::VARCHAR AS BIGINT) END;
-- num: a token count, 0 for anything that is not a number
CREATE MACRO jcount(j) AS coalesce(jint(j), 0);
-- fnum: a cost, 0.0 for anything that is not a number; an infinity or NaN is odd
CREATE MACRO jcost_ok(j) AS coalesce(NOT jnumber(j) OR isfinite(TRY_CAST(j::VARCHAR AS DOUBLE)), true);
CREATE MACRO jcost(j) AS CASE WHEN jnumber(j) THEN TRY_CAST(j::VARCHAR AS DOUBLE) ELSE 0.0 END;
-- a time the store can hold
CREATE MACRO in_time(ms) AS ms BETWEEN {MIN_TIME_MS} AND {MAX_TIME_MS};
-- call_status
CREATE MACRO call_status(s) AS CASE s WHEN 'completed' THEN 'completed' WHEN 'error' THEN 'error' ELSE 'running' END;
-- a time of a tool call that the SQL reads: none, or an integer in range
CREATE MACRO time_ok(j) AS jint_ok(j) AND coalesce(in_time(jint(j)), true);
-- a text that is no JSON text: the NaN and Infinity of JSON5, which DuckDB reads and would write back
CREATE MACRO not_json(t) AS contains(t, 'NaN') OR contains(t, 'Infinity');
-- `x or y` for two optional texts, where '' counts as nothing
CREATE MACRO either(x, y) AS CASE WHEN x <> '' THEN x ELSE y END;
"""


def named(template: str, **tables: str) -> str:
    """A template with its `{name}` tables filled in (by replacing: the JSON structures hold braces)."""
    for name, table in tables.items():
        template = template.replace("{" + name + "}", table)
    return template


def first_row(columns: str, select: str) -> str:
    """An SQLite query for DuckDB, led by a row with a value of its column's type in every column (`columns`:
    `value AS name, ...`), which DuckDB drops (`WHERE real`): the driver types each column by its first batch,
    and a batch of NULLs, or no row at all, would read as BIGINT (see `SqliteFile.stream`)."""
    return f"SELECT false AS real, {columns} UNION ALL SELECT true, {select}"


def message_rows(where: str) -> str:
    """SQLite: the message rows of a batch, as bytes (see `text`) and integers."""
    return first_row("0 AS rid, x'' AS id, x'' AS session_id, 0 AS created, x'' AS data",
                     f"rowid, {text('id')}, {text('session_id')}, CAST(time_created AS INTEGER), {text('data')}"
                     f" FROM message WHERE id IS NOT NULL{where}")


# DuckDB: a batch's messages (`stream` is the SQLite result above), each parsed once and kept as the columns of
# its record, with the reason a row is odd: its id or session id not UTF-8, data that is not JSON DuckDB reads, a
# figure that is a float or too big, an error field that is not text. The careful path reads those (`_messages`).
STAGE_MESSAGES = f"""
CREATE TABLE {{table}} AS
SELECT rid, id, session_id, created, reason,
       coalesce(jstr(v.role), '') AS role, jstr(v.parentID) AS parent_id,
       nullif(coalesce(jstr(v.agent), jstr(v.mode)), '') AS agent,
       jint(v.time.completed) AS completed,
       nullif(coalesce(jstr(v.modelID), jstr(v.model.modelID)), '') AS model,
       nullif(coalesce(jstr(v.providerID), jstr(v.model.providerID)), '') AS provider,
       CASE WHEN err_name <> '' AND err_text <> '' THEN err_name || ': ' || err_text
            WHEN err_text <> '' THEN err_text
            WHEN err_name <> '' THEN err_name END AS error,
       jcount(v.tokens.input) AS tokens_in, jcount(v.tokens.output) AS tokens_out,
       jcount(v.tokens.reasoning) AS tokens_reasoning, jcount(v.tokens.cache.read) AS tokens_cache_read,
       jcount(v.tokens.cache.write) AS tokens_cache_write, jcost(v.cost) AS cost
FROM (
  SELECT *, CASE WHEN id IS NULL THEN 'id'
                 WHEN session_id IS NULL AND raw_session_id IS NOT NULL THEN 'session id'
                 WHEN v IS NULL THEN 'not JSON or not UTF-8'
                 WHEN NOT (jint_ok(v.time.completed) AND jint_ok(v.tokens.input) AND jint_ok(v.tokens.output)
                           AND jint_ok(v.tokens.reasoning) AND jint_ok(v.tokens.cache.read)
                           AND jint_ok(v.tokens.cache.write) AND jcost_ok(v.cost)) THEN 'figure'
                 WHEN NOT (jstr_ok(v.error.name) AND jstr_ok(v.error.message) AND jstr_ok(v.error.data.message))
                      THEN 'error'
            END AS reason,
            jstr(v.error.name) AS err_name, either(jstr(v.error.data.message), jstr(v.error.message)) AS err_text
  FROM (SELECT rid, try(decode(id)) AS id, session_id AS raw_session_id, try(decode(session_id)) AS session_id,
               created, try(from_json(try(decode(data)), '{MESSAGE_JSON}')) AS v
        FROM stream WHERE real))
"""
ODD_MESSAGES = "SELECT rid, reason FROM {messages} WHERE reason IS NOT NULL ORDER BY rid"
# The records of the others, in RawMessage's field order after the session id
MESSAGES = """
SELECT session_id, id, role, parent_id, agent, coalesce(created, 0), completed, model, provider, error,
       tokens_in, tokens_out, tokens_reasoning, tokens_cache_read, tokens_cache_write, cost
FROM {messages} WHERE reason IS NULL ORDER BY rid
"""


def part_rows(where: str) -> str:
    """SQLite: the tool and step-finish parts of a batch (and the few other parts the LIKE filters let by)."""
    return first_row("0 AS rid, x'' AS id, x'' AS message_id, x'' AS data",
                     f"rowid, {text('id')}, {text('message_id')}, {text('data')}"
                     f" FROM part WHERE ({TOOL_FILTER} OR {STEP_FILTER}) AND id IS NOT NULL{where}")


# DuckDB: a batch's parts, each parsed once and kept as what the batch needs of it (its kind, its tool name, its
# step-finish figures), without its output or input, which stay in SQLite until the part is written; with the
# reason a row is odd, where the row alone tells it.
STAGE_PARTS = f"""
CREATE TABLE {{table}} AS
SELECT rid, id, message_id, kind, tool,
       CASE WHEN kind = 'odd' THEN 'not JSON or not UTF-8'
            WHEN kind = 'tool' AND NOT jstr_ok(v.state.title) THEN 'title'
            WHEN kind = 'tool' AND NOT time_ok(v.state.time.start) THEN 'start'
            WHEN kind = 'tool' AND status <> 'running' AND NOT time_ok(v.state.time."end") THEN 'end'
            WHEN kind = 'tool' AND status = 'error' AND NOT jstr_ok(v.state.error) THEN 'error'
            WHEN kind = 'tool' AND not_json(v.state.input::VARCHAR) THEN 'input'
            WHEN kind = 'step' AND NOT (jint_ok(v.tokens.input) AND jint_ok(v.tokens.output)
                                        AND jint_ok(v.tokens.reasoning) AND jint_ok(v.tokens.cache.read)
                                        AND jint_ok(v.tokens.cache.write) AND jcost_ok(v.cost)) THEN 'figure'
       END AS reason,
       CASE WHEN kind = 'step' THEN jcount(v.tokens.input) END AS tokens_in,
       CASE WHEN kind = 'step' THEN jcount(v.tokens.output) END AS tokens_out,
       CASE WHEN kind = 'step' THEN jcount(v.tokens.reasoning) END AS tokens_reasoning,
       CASE WHEN kind = 'step' THEN jcount(v.tokens.cache.read) END AS tokens_cache_read,
       CASE WHEN kind = 'step' THEN jcount(v.tokens.cache.write) END AS tokens_cache_write,
       CASE WHEN kind = 'step' THEN jcost(v.cost) END AS cost
FROM (
  SELECT *, jstr(v.tool) AS tool, call_status(v.state.status) AS status,
         CASE WHEN v IS NULL OR id IS NULL OR message_id IS NULL AND raw_message_id IS NOT NULL THEN 'odd'
              WHEN jstr(v.type) = 'tool' AND jstr(v.tool) IN ('task', 'subagent') THEN 'task'
              WHEN jstr(v.type) = 'tool' AND jstr(v.tool) IS NOT NULL THEN 'tool'
              WHEN jstr(v.type) = 'step-finish' THEN 'step'
              ELSE 'other' END AS kind
  FROM (SELECT rid, try(decode(id)) AS id, message_id AS raw_message_id, try(decode(message_id)) AS message_id,
               try(from_json(try(decode(data)), '{PART_HEAD_JSON}')) AS v
        FROM stream WHERE real))
"""

# What needs the whole batch: a tool call with the id of a message (an LLM call) or of another tool call is odd,
# and so are the parts of a message whose own time is out of range (a call without a start takes its
# message's). Every part of a message with an odd part is read the careful way (`careful`), so each message's
# parts are read by one path.
CLASSIFY_PARTS = """
CREATE TABLE {kinds} AS
WITH r AS (
  SELECT * REPLACE (
      coalesce(reason, CASE WHEN kind = 'tool' AND (count(*) OVER (PARTITION BY id, kind) > 1
                                                    OR id IN (SELECT id FROM {messages} WHERE id IS NOT NULL))
                            THEN 'id' END) AS reason)
  FROM {parts}),
careful AS (
  SELECT DISTINCT message_id FROM r WHERE reason IS NOT NULL AND message_id IS NOT NULL
  UNION SELECT id FROM {messages} WHERE id IS NOT NULL AND NOT in_time(created))
SELECT *, reason IS NOT NULL OR coalesce(message_id IN (SELECT message_id FROM careful), false) AS careful
FROM r
"""
# What the careful path reads again, and why (for the log)
CAREFUL_PARTS = "SELECT rid, reason FROM {kinds} WHERE careful ORDER BY rid"
# The delegation calls, read whole by the reader (`_task_calls`)
TASK_PARTS = "SELECT rid FROM {kinds} WHERE kind = 'task' AND NOT careful ORDER BY rid"
# Per message: its tool names (delegations too), and its step-finish parts summed in part order (`_parts`)
PER_MESSAGE = """
SELECT message_id,
       list(tool ORDER BY rid) FILTER (WHERE kind IN ('tool', 'task')),
       count(*) FILTER (WHERE kind = 'step'),
       sum(tokens_in), sum(tokens_out), sum(tokens_reasoning), sum(tokens_cache_read), sum(tokens_cache_write),
       list_sum(list(cost ORDER BY rid) FILTER (WHERE kind = 'step'))
FROM {kinds} WHERE NOT careful AND message_id IS NOT NULL AND kind IN ('tool', 'task', 'step')
GROUP BY message_id
"""
# The tool calls whose spans SQL writes
TOOL_PARTS = "SELECT rid, id, message_id FROM {kinds} WHERE kind = 'tool' AND NOT careful ORDER BY rid"


def tool_rows() -> str:
    """SQLite: the tool parts to write as spans, by rowid (a JSON array), each with its place in that array: what
    Python decided for it (its trace, its root session, the start it takes when it has none) is looked up there
    by DuckDB (see the module's note on joins)."""
    return first_row("0 AS k, x'' AS id, x'' AS message_id, x'' AS data",
                     f"j.key, {text('p.id')}, {text('p.message_id')}, {text('p.data')}"
                     " FROM json_each(?) AS j JOIN part AS p ON p.rowid = j.value")


def _text(j: str) -> str:
    """`jstr` written out."""
    return (f"CASE WHEN starts_with({j}::VARCHAR, '\"') THEN CASE WHEN contains({j}::VARCHAR, '\\') THEN {j} ->> '$'"
            f" ELSE substr({j}::VARCHAR, 2, length({j}::VARCHAR) - 2) END END")


def _integer(j: str) -> str:
    """`jint` written out."""
    return f"CASE WHEN regexp_full_match({j}::VARCHAR, '-?[0-9]{{1,18}}') THEN CAST({j}::VARCHAR AS BIGINT) END"


# DuckDB: those parts as `agent_spans` rows, in its column order, read from `{rows}` (the SQLite result above) by
# the trace store's own DuckDB as it inserts them; $1, $2 and $3 are their traces, root sessions and default
# starts, in the order of the rowids given to SQLite. Only parts the staging found as OpenCode writes them come here,
# so nothing is checked again, and the staging's macros are written out (the trace store keeps none).
TOOL_SPANS = f"""
SELECT id AS span_id, trace_id, root_session_id, message_id AS parent_span_id, 'tool' AS kind, tool AS name,
       {_text('v.state.title')} AS title, status, epoch_ms(start) AS started_at, epoch_ms(stop) AS ended_at,
       stop - start AS duration_ms, 0::BIGINT AS tokens_in, 0::BIGINT AS tokens_out, 0::BIGINT AS tokens_reasoning,
       0::BIGINT AS tokens_cache_read, 0::BIGINT AS tokens_cache_write, 0.0::DOUBLE AS cost_usd,
       v.state.input::VARCHAR AS input,
       CASE WHEN status = 'error' AND v.state.error IS NOT NULL THEN {_text('v.state.error')}
            ELSE {_text('v.state.output')} END AS output
FROM (SELECT *, coalesce({_integer('v.state.time.start')}, default_start) AS start,
             CASE WHEN status <> 'running' THEN {_integer('v.state.time."end"')} END AS stop
      FROM (SELECT *, {_text('v.tool')} AS tool,
                   CASE v.state.status WHEN 'completed' THEN 'completed' WHEN 'error' THEN 'error'
                                       ELSE 'running' END AS status
            FROM (SELECT ($1::VARCHAR[])[k + 1] AS trace_id, ($2::VARCHAR[])[k + 1] AS root_session_id,
                         ($3::BIGINT[])[k + 1] AS default_start, decode(id) AS id, decode(message_id) AS message_id,
                         from_json(decode(data), '{PART_JSON}') AS v FROM {{rows}} WHERE real)))
"""


on_staging(MACROS)
