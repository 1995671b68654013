"""The Lua behind every approval state change, read from ``lua/*.lua`` (package resources).

Each script runs atomically inside Redis: a transition and its audit record are written
together, and two processes racing on one request are serialised by Redis itself. The
graph and the status sets are not written in Lua: they are rendered in from ``model`` at
load time, in place of ``__NAME__`` placeholders, so the scripts enforce exactly the graph
the Python side knows. The calling convention is the one of every script of the bot
(``bot.lua``); each script's header gives its KEYS and ARGV.

The job's index key depends on stored data (the job id), so the scripts build it from a key
prefix: they target a single Redis (or a Sentinel-managed primary), not a Cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.audit import JOB_INDEX_TTL, LUA_JOB_INDEX_ADD
from bot.lua import render, source


def lua(name: str) -> str:
    """The text of ``lua/{name}.lua`` of this package."""
    return source(__package__ or "bot.approvals", name)


@dataclass(frozen=True, slots=True)
class ScriptSources:
    """The complete Lua text of each approval script, graph and audit layout included."""

    create: str
    update: str
    decide: str
    transition: str
    expire: str
    renew: str
    release: str
    reserve: str
    unreserve: str
    mark: str


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _lua_graph(graph: Mapping[str, Sequence[str]]) -> str:
    rows = []
    for status, targets in graph.items():
        inner = ", ".join(f"[{_lua_string(t)}] = true" for t in targets)
        rows.append(f"[{_lua_string(status)}] = {{{inner}}}")
    return "{" + ", ".join(rows) + "}"


def _lua_set(items: Sequence[str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(i)}] = true" for i in items) + "}"


def _lua_map(items: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in items.items()) + "}"


def _lua_list(items: Sequence[str]) -> str:
    return "{" + ", ".join(_lua_string(i) for i in items) + "}"


def build_sources(
    graph: Mapping[str, Sequence[str]],
    audit_fields: Sequence[str],
    active: Sequence[str],
    reviewing: Sequence[str],
    codes: Mapping[str, str],
    resumable: Sequence[str],
    baseline: Sequence[str],
    retention_seconds: int,
) -> ScriptSources:
    """Render every script with ``graph`` (status -> allowed next statuses), the audit layout,
    the ``active`` statuses (those a worker is still tracking), the ``reviewing`` ones among
    them (left to the review sweep), the field ``codes``, the ``baseline`` fields kept only
    in ``resumable`` statuses, and how long a request outlives its expiry baked in."""
    fields = render(lua("codes"), {"CODES": _lua_map(codes)})
    prelude = (
        fields
        + LUA_JOB_INDEX_ADD
        + render(
            lua("prelude"),
            {
                "GRAPH": _lua_graph(graph),
                "RESUMABLE": _lua_set(resumable),
                "REVIEWING": _lua_set(reviewing),
                "BASELINE": _lua_list(baseline),
                "AUDIT_FIELDS": _lua_list(audit_fields),
                "ACTIVE": _lua_set(active),
                "JOB_INDEX_TTL": str(JOB_INDEX_TTL),
                "RETENTION": str(int(retention_seconds)),
            },
        )
    )
    return ScriptSources(
        create=prelude + lua("create"),
        update=fields + lua("update"),
        decide=prelude + lua("decide"),
        transition=prelude + lua("transition"),
        expire=prelude + lua("expire"),
        renew=lua("renew"),
        release=fields + lua("release"),
        reserve=prelude + lua("reserve"),
        unreserve=lua("unreserve"),
        mark=lua("mark"),
    )
