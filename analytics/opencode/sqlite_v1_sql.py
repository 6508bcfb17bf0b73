"""The DuckDB SQL that parses OpenCode 1.x rows: messages, step-finish parts and tool parts.

The 1.x reader streams its rows from SQLite (as Arrow, through the ADBC driver) into DuckDB, which parses their
JSON once per row with `from_json`. A row is read in SQL only when it is as OpenCode writes it: JSON that DuckDB
parses, ids that are UTF-8, integers where OpenCode writes integers (no float, nothing beyond 64 bits), times
inside 1970..9999, text where OpenCode writes text. Any other row is *odd*: SQL says why (`reason`), and the
reader reads it again the careful way, in Python, with the checks and repairs the other readers use, so a damaged
row is skipped or repaired and counted as before, and never aborts a statement. Each macro below is the SQL twin
of a Python rule in `records.py`, named after it.

A batch is read in two passes over its parts, and only the second touches the bulk of them: when the batch is
read, the step-finish parts (each message's usage) and the delegation calls (the delegation logic) are staged,
small; when it is written, its tool calls go from SQLite through DuckDB's JSON functions straight into the trace
store (`TOOL_SPANS`), their text never held anywhere whole.

Two DuckDB planner habits are worked around here (benchmarks/bench_load.py checks both on every run, and fails
when a DuckDB upgrade brings them back):
  * a filter on a parsed field may be pushed below the projection that parses, and the JSON is then parsed twice
    (once for the filter, once for the columns): every filter here reads a column an inner query made, and the
    parse is a projection of its own, which DuckDB 2.0 keeps (the benchmark looks for one `from_json` in the plan);
  * an Arrow stream has no row count, so the planner takes it for the small side of a hash join and would build
    the hash table from it, text and all: the streamed tool parts are never joined in DuckDB. SQLite joins them to
    the messages they belong to (`json_each`), and what Python decided for each message (its trace, its root
    session, its time) is looked up by the message's place in that list.
"""

from __future__ import annotations

from analytics.models import MAX_TIME_MS, MIN_TIME_MS
from analytics.opencode.sqlite_store import on_staging, text

# A quoted key or value such as "tool" cannot occur unescaped inside a JSON string, so these LIKE patterns keep
# every tool, step-finish and delegation part (whatever the spacing) and drop the others unparsed.
TOOL_FILTER = "data LIKE '%\"tool\"%'"
STEP_FILTER = "data LIKE '%\"step-finish\"%'"
TASK_FILTER = "(data LIKE '%\"task\"%' OR data LIKE '%\"subagent\"%')"
# A part larger than this is not handed to DuckDB: DuckDB holds several copies of a value while it parses and
# stores it (a 68 MB tool output ran out of a gigabyte), so such a part is read the careful way, as all were
HUGE_BYTES = 4 * 1024 * 1024


def _data(column: str) -> str:
    """The data column as bytes (see `text`), and whether it is too large for DuckDB (then it is NULL)."""
    return (f"CASE WHEN octet_length({column}) <= {HUGE_BYTES} THEN {text(column)} END,"
            f" octet_length({column}) > {HUGE_BYTES}")

_NUMBERS = '"input":"JSON","output":"JSON","reasoning":"JSON","cache":{"read":"JSON","write":"JSON"}'
MESSAGE_JSON = ('{"role":"JSON","parentID":"JSON","agent":"JSON","mode":"JSON","modelID":"JSON","providerID":"JSON",'
                '"time":{"completed":"JSON"},"error":{"name":"JSON","data":{"message":"JSON"},"message":"JSON"},'
                '"tokens":{' + _NUMBERS + '},"cost":"JSON","model":{"modelID":"JSON","providerID":"JSON"}}')
_STATE = '"status":"VARCHAR","title":"JSON","time":{"start":"JSON","end":"JSON"},"error":"JSON","input":"JSON"'
PART_HEAD_JSON = '{"type":"JSON","tool":"JSON","tokens":{' + _NUMBERS + '},"cost":"JSON"}'
# a tool span's, output included: as VARCHAR, the string unescaped in the parse (as JSON text it was written out
# again, searched for a backslash and parsed a second time: 0.45 s of the benchmark's load); only an output that
# may be the text of another kind of value (`maybe_not_text`, a few per cent) is looked at again
SPAN_JSON = '{"type":"JSON","tool":"JSON","state":{' + _STATE + ',"output":"VARCHAR"}}'

# The SQL reads each field the parse gives as its raw JSON text (`from_json` to JSON keeps it, minified, numbers
# as written; SQL NULL for null or missing) and tells its kind from that text with string functions: parsing each
# field again (`json_type`, `->>`, a cast from JSON) for every check took most of the staging's time.
_MACROS = f"""
-- as_str: the text of a JSON string (unescaped only when it holds an escape), NULL for any other value
CREATE OR REPLACE {{temp}}MACRO jstr(j) AS CASE WHEN starts_with(j::VARCHAR, '"') THEN
    CASE WHEN contains(j::VARCHAR, '\\') THEN j ->> '$' ELSE substr(j::VARCHAR, 2, length(j::VARCHAR) - 2) END END;
-- text, or nothing: what OpenCode writes where it writes text
CREATE OR REPLACE {{temp}}MACRO jstr_ok(j) AS j IS NULL OR starts_with(j::VARCHAR, '"');
-- a number: an integer, a float, or the NaN and Infinity of JSON5 (which DuckDB reads)
CREATE OR REPLACE {{temp}}MACRO jnumber(j) AS regexp_matches(j::VARCHAR, '^-?[0-9NI]');
-- an integer that surely fits 64 bits (as OpenCode writes its figures); anything longer is read by Python
CREATE OR REPLACE {{temp}}MACRO jinteger(j) AS regexp_full_match(j::VARCHAR, '-?[0-9]{{1,18}}');
-- an integer as OpenCode writes one, or no number at all: a float or a longer number is odd
CREATE OR REPLACE {{temp}}MACRO jint_ok(j) AS coalesce(NOT jnumber(j) OR jinteger(j), true);
-- as_int for the values jint_ok lets through: the integer, or NULL (null, a boolean, text, a list, an object)
CREATE OR REPLACE {{temp}}MACRO jint(j) AS CASE WHEN jinteger(j) THEN CAST(j::VARCHAR AS BIGINT) END;
-- num: a token count, 0 for anything that is not a number
CREATE OR REPLACE {{temp}}MACRO jcount(j) AS coalesce(jint(j), 0);
-- fnum: a cost, 0.0 for anything that is not a number; an infinity or NaN is odd
CREATE OR REPLACE {{temp}}MACRO jcost_ok(j) AS
    coalesce(NOT jnumber(j) OR isfinite(TRY_CAST(j::VARCHAR AS DOUBLE)), true);
CREATE OR REPLACE {{temp}}MACRO jcost(j) AS CASE WHEN jnumber(j) THEN TRY_CAST(j::VARCHAR AS DOUBLE) ELSE 0.0 END;
-- a value `from_json` gave as VARCHAR that may not have been a JSON string: the text of an object or a list
-- (minified), of a number (NaN, inf, Infinity and 1e400 included) or of a boolean looks like one of these
CREATE OR REPLACE {{temp}}MACRO maybe_not_text(o) AS (starts_with(o, '{{') AND ends_with(o, '}}'))
    OR (starts_with(o, '[') AND ends_with(o, ']')) OR regexp_full_match(o, '[-+.0-9a-zA-Z]+');
-- a time the store can hold
CREATE OR REPLACE {{temp}}MACRO in_time(ms) AS ms BETWEEN {MIN_TIME_MS} AND {MAX_TIME_MS};
-- call_status
CREATE OR REPLACE {{temp}}MACRO call_status(s) AS
    CASE s WHEN 'completed' THEN 'completed' WHEN 'error' THEN 'error' ELSE 'running' END;
-- a time of a tool call that the SQL reads: none, or an integer in range
CREATE OR REPLACE {{temp}}MACRO time_ok(j) AS jint_ok(j) AND coalesce(in_time(jint(j)), true);
-- a text that is no JSON text: the NaN and Infinity of JSON5, which DuckDB reads and would write back
CREATE OR REPLACE {{temp}}MACRO not_json(t) AS contains(t, 'NaN') OR contains(t, 'Infinity');
-- `x or y` for two optional texts, where '' counts as nothing
CREATE OR REPLACE {{temp}}MACRO either(x, y) AS CASE WHEN x <> '' THEN x ELSE y END;
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
# The records of the others, in RawMessage's field order after the session id, each with its usage summed from
# its step-finish parts (`{steps}`: PER_MESSAGE), which replaces the message's own `tokens` (the last step's
# only), and its delegation tool names
MESSAGES = """
SELECT m.session_id, m.id, role, parent_id, agent, coalesce(created, 0), completed, model, provider, error,
       CASE WHEN s.steps > 0 THEN s.tokens_in ELSE m.tokens_in END,
       CASE WHEN s.steps > 0 THEN s.tokens_out ELSE m.tokens_out END,
       CASE WHEN s.steps > 0 THEN s.tokens_reasoning ELSE m.tokens_reasoning END,
       CASE WHEN s.steps > 0 THEN s.tokens_cache_read ELSE m.tokens_cache_read END,
       CASE WHEN s.steps > 0 THEN s.tokens_cache_write ELSE m.tokens_cache_write END,
       CASE WHEN s.steps > 0 THEN s.cost ELSE m.cost END,
       s.tools
FROM {messages} m LEFT JOIN ({steps}) s ON s.message_id = m.id
WHERE m.reason IS NULL ORDER BY m.rid
"""


def part_rows(where: str) -> str:
    """SQLite: the step-finish and delegation parts of a batch (and the few others the LIKE filters let by)."""
    return first_row("0 AS rid, x'' AS id, x'' AS message_id, x'' AS data, false AS huge",
                     f"rowid, {text('id')}, {text('message_id')}, {_data('data')}"
                     f" FROM part WHERE ({STEP_FILTER} OR {TASK_FILTER}) AND id IS NOT NULL{where}")


# DuckDB: those parts, each parsed once and kept as what the batch needs of it (its kind, its tool name, its
# step-finish figures), with the reason a row is odd.
STAGE_PARTS = f"""
CREATE TABLE {{table}} AS
SELECT rid, id, message_id, kind, tool,
       CASE WHEN huge THEN 'too large' WHEN kind = 'odd' THEN 'not JSON or not UTF-8'
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
  SELECT *, jstr(v.tool) AS tool,
         CASE WHEN v IS NULL OR id IS NULL OR message_id IS NULL AND raw_message_id IS NOT NULL THEN 'odd'
              WHEN jstr(v.type) = 'tool' AND jstr(v.tool) IN ('task', 'subagent') THEN 'task'
              WHEN jstr(v.type) = 'step-finish' THEN 'step'
              ELSE 'other' END AS kind
  FROM (SELECT rid, try(decode(id)) AS id, message_id AS raw_message_id, try(decode(message_id)) AS message_id,
               huge, try(from_json(try(decode(data)), '{PART_HEAD_JSON}')) AS v
        FROM stream WHERE real))
"""

# Every part of a message with an odd step-finish part is read the careful way (`careful`), so each message's
# usage is summed by one path; an odd part whose message id cannot be read is read that way alone.
CLASSIFY_PARTS = """
CREATE TABLE {kinds} AS
WITH careful AS (SELECT DISTINCT message_id FROM {parts} WHERE reason IS NOT NULL AND message_id IS NOT NULL)
SELECT *, reason IS NOT NULL OR coalesce(message_id IN (SELECT message_id FROM careful), false) AS careful
FROM {parts}
"""
# What the careful path reads again, and why (for the log)
CAREFUL_PARTS = "SELECT rid, reason FROM {kinds} WHERE careful ORDER BY rid"
# The delegation calls, read whole by the reader (`_task_calls`)
TASK_PARTS = "SELECT rid FROM {kinds} WHERE kind = 'task' AND NOT careful ORDER BY rid"
# Per message: its delegation tool names, and its step-finish parts summed in part order (`_careful_steps`)
PER_MESSAGE = """
SELECT message_id, list(tool ORDER BY rid) FILTER (WHERE kind = 'task') AS tools,
       count(*) FILTER (WHERE kind = 'step') AS steps,
       sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, sum(tokens_reasoning) AS tokens_reasoning,
       sum(tokens_cache_read) AS tokens_cache_read, sum(tokens_cache_write) AS tokens_cache_write,
       list_sum(list(cost ORDER BY rid) FILTER (WHERE kind = 'step')) AS cost
FROM {kinds} WHERE NOT careful AND message_id IS NOT NULL AND kind IN ('task', 'step')
GROUP BY message_id
"""


def tool_rows() -> str:
    """SQLite: the tool parts of the LLM calls a batch writes (their message ids, a JSON array), each with the
    place of its message in that array, where DuckDB looks up what Python decided for it; without the parts
    the batch's read took the careful way already (their rowids, the second array)."""
    return first_row("0 AS k, 0 AS rid, x'' AS id, x'' AS message_id, x'' AS data, false AS huge",
                     f"j.key, p.rowid, {text('p.id')}, {text('p.message_id')}, {_data('p.data')}"
                     f" FROM json_each(?) AS j JOIN part AS p ON p.message_id = j.value"
                     f" WHERE {TOOL_FILTER.replace('data', 'p.data')} AND p.id IS NOT NULL"
                     " AND p.rowid NOT IN (SELECT value FROM json_each(?))")


# DuckDB: those parts as `agent_spans` rows, in its column order, read from `{rows}` (the SQLite result above) by
# the trace store's own DuckDB as it inserts them; $1, $2 and $3 are the traces, root sessions and times of the
# messages, in the order given to SQLite. A part that is not a tool call (a delegation, a text that mentions
# "tool") is left out; an odd part is written as a marker, the only rows with no `kind`: its rowid as `span_id`
# and its reason as `name`, which the reader reads back, deletes and reads the careful way.
TOOL_SPANS = f"""
SELECT CASE WHEN reason IS NULL THEN id ELSE rid::VARCHAR END AS span_id, trace_id, root_session_id,
       message_id AS parent_span_id, CASE WHEN reason IS NULL THEN 'tool' END AS kind,
       CASE WHEN reason IS NULL THEN tool ELSE reason END AS name,
       CASE WHEN reason IS NULL THEN jstr(v.state.title) END AS title,
       CASE WHEN reason IS NULL THEN status END AS status,
       CASE WHEN reason IS NULL THEN epoch_ms(start) END AS started_at,
       CASE WHEN reason IS NULL THEN epoch_ms(stop) END AS ended_at,
       CASE WHEN reason IS NULL THEN stop - start END AS duration_ms,
       0::BIGINT AS tokens_in, 0::BIGINT AS tokens_out, 0::BIGINT AS tokens_reasoning,
       0::BIGINT AS tokens_cache_read, 0::BIGINT AS tokens_cache_write, 0.0::DOUBLE AS cost_usd,
       CASE WHEN reason IS NULL THEN v.state.input::VARCHAR END AS input,
       CASE WHEN reason IS NOT NULL THEN NULL
            WHEN status = 'error' AND v.state.error IS NOT NULL THEN jstr(v.state.error)
            WHEN maybe_not_text(v.state.output) THEN jstr(json_extract(d, '$.state.output'))
            ELSE v.state.output END AS output
FROM (
  SELECT *, CASE WHEN huge THEN 'too large' WHEN v IS NULL OR id IS NULL THEN 'not JSON or not UTF-8'
                 WHEN NOT jstr_ok(v.state.title) THEN 'title'
                 WHEN NOT (jint_ok(v.state.time.start) AND coalesce(in_time(start), true)) THEN 'start'
                 WHEN status <> 'running'
                      AND NOT (jint_ok(v.state.time."end") AND coalesce(in_time(stop), true)) THEN 'end'
                 WHEN status = 'error' AND NOT jstr_ok(v.state.error) THEN 'error'
                 WHEN not_json(v.state.input::VARCHAR) THEN 'input'
            END AS reason
  FROM (SELECT *, coalesce(jint(v.state.time.start), default_start) AS start,
               CASE WHEN status <> 'running' THEN jint(v.state.time."end") END AS stop
        FROM (SELECT *, jstr(v.type) AS type, jstr(v.tool) AS tool, call_status(v.state.status) AS status
              FROM (SELECT rid, ($1::VARCHAR[])[k + 1] AS trace_id, ($2::VARCHAR[])[k + 1] AS root_session_id,
                           ($3::BIGINT[])[k + 1] AS default_start, try(decode(id)) AS id,
                           decode(message_id) AS message_id, huge, d, try(from_json(d, '{SPAN_JSON}')) AS v
                    FROM (SELECT *, try(decode(data)) AS d FROM {{rows}} WHERE real))))
  WHERE v IS NULL OR type = 'tool' AND tool IS NOT NULL AND tool NOT IN ('task', 'subagent'))
"""


MACROS = _MACROS.replace("{temp}", "")  # for the staging database, whose cursors all see them
TEMP_MACROS = _MACROS.replace("{temp}", "TEMP ")  # for a trace store's cursor: its file keeps none of them

on_staging(MACROS)
