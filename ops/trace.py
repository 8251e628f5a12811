"""What happened to a request or a lead: events, rows written and redrives, in time order.

Takes a correlation_id, an event_id, a lead id or a phone (written any usual way).
A correlation id shows one request's journey; a lead or phone shows every request
that touched that lead. Phones, e-mails and message bodies are masked unless asked.
Against the cloud, the functions' log lines for those requests come from Cloud Logging
(google-cloud-logging over REST; CLOUD_LOGGING_ENDPOINT points it elsewhere, as the
tests do), within a window around the events, and join the timeline.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.audit import runs_for
from shared.db import Cursor, Database, rows_as_dicts
from shared.masking import mask_phone, mask_text
from shared.phones import InvalidPhone, normalize_phone

MAX_LOG_IDS = 20  # a Cloud Logging filter with more ids gets unwieldy
LOG_PAGE_SIZE = 100
LOG_LIMIT = 300  # log lines shown at most: a lead with months of history has thousands
LOG_BEFORE = timedelta(minutes=15)  # the webhook is logged before its event row exists
LOG_AFTER = timedelta(hours=2)  # retries and dead-lettering go on after the last row changed


@dataclass
class Trace:
    query: str
    kind: str = "unknown"  # correlation_id, event_id, lead, phone, or unknown (nothing found)
    correlation_ids: list[str] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    redrives: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)  # Cloud Logging lines (cloud only)

    @property
    def found(self) -> bool:
        return bool(self.events or self.rows)

    def timeline(self) -> list[dict[str, Any]]:
        steps = [{"at": e["created_at"], "what": f"event {e['event_type']}", "correlation_id": e["correlation_id"],
                  "detail": _event_detail(e)} for e in self.events]
        steps += [{"at": r["at"], "what": r["what"], "correlation_id": r["correlation_id"], "detail": r["detail"]}
                  for r in self.rows]
        steps += [{"at": r["started_at"], "what": r["command"], "correlation_id": None,
                   "detail": f"run {r['id']} by {r['operator']}: {r['status']}, moved {r['moved']}, "
                             f"skipped {r['skipped']}, failed {r['failed']}"} for r in self.redrives]
        steps += [{"at": e["at"], "what": f"log {e['severity']}", "correlation_id": e["correlation_id"],
                   "detail": f"{e['function']}: {e['message']}"} for e in self.logs]
        return sorted(steps, key=lambda s: _aware(s["at"]))

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "kind": self.kind, "correlation_ids": self.correlation_ids,
                "lead_ids": self.lead_ids, "events": self.events, "rows": self.rows, "redrives": self.redrives,
                "logs": self.logs, "timeline": self.timeline()}

    def log_window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """From a little before the first thing found to a while after the last (never after now)."""
        moments = [_aware(s["at"]) for s in self.timeline()]
        end = min(max(moments) + LOG_AFTER, now or datetime.now(UTC)) if moments else now or datetime.now(UTC)
        return (min(moments) - LOG_BEFORE if moments else end - timedelta(days=7)), end


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _event_detail(event: dict[str, Any]) -> str:
    detail = f"{event['status']}, attempts {event['attempts']}, event_id {event['event_id']}"
    if event.get("last_error"):
        detail += f", last error: {event['last_error']}"
    return detail


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def trace(db: Database, query: str, *, show_pii: bool = False) -> Trace:
    result = Trace(query=query.strip())
    q = result.query
    with db.transaction() as cur:
        if _select(cur, "SELECT 1 FROM events WHERE correlation_id = %s LIMIT 1", q):
            result.kind, result.correlation_ids = "correlation_id", [q]
        elif rows := _select(cur, "SELECT DISTINCT correlation_id FROM events WHERE event_id = %s", q):
            result.kind, result.correlation_ids = "event_id", sorted(r["correlation_id"] for r in rows)
        elif _is_uuid(q) and _select(cur, "SELECT 1 FROM leads WHERE id = %s", q):
            result.kind, result.lead_ids = "lead", [q]
        else:
            phone = _phone(q)
            rows = _select(cur, "SELECT id FROM leads WHERE phone = %s ORDER BY created_at", phone) if phone else []
            if rows:
                result.kind, result.lead_ids = "phone", [str(r["id"]) for r in rows]
        if result.lead_ids:
            result.rows = _lead_rows(cur, result.lead_ids, show_pii)
            result.correlation_ids = sorted({r["correlation_id"] for r in result.rows})
        elif result.correlation_ids:
            result.rows = _request_rows(cur, result.correlation_ids, show_pii)
        if result.correlation_ids:
            result.events = _select(cur, "SELECT event_id, event_type, tenant_id AS tenant, source, correlation_id, "
                                         "status, attempts, last_error, "
                                         "created_at, updated_at, processed_at FROM events "
                                         "WHERE correlation_id = ANY(%s::text[]) ORDER BY created_at, id",
                                    result.correlation_ids)
    event_ids = sorted({e["event_id"] for e in result.events})
    result.redrives = runs_for(db, result.correlation_ids, event_ids) if result.correlation_ids else []
    return result


def _select(cur: Cursor, sql: str, *args: Any) -> list[dict[str, Any]]:
    cur.execute(sql, args)
    return rows_as_dicts(cur)


def _phone(text: str) -> str | None:
    try:
        return normalize_phone(text)
    except InvalidPhone:
        return None


# Each table a request writes: how to find its rows, and how to say what the row is.
_TABLES: dict[str, str] = {
    "leads": "SELECT id, phone, email, name, source, stage, correlation_id, last_correlation_id, created_at, "
             "updated_at FROM leads",
    "conversations": "SELECT id, lead_id, provider, chat_id, handled_by, correlation_id, created_at FROM conversations",
    "messages": "SELECT id, lead_id, provider, provider_message_id, direction, message_type, body, sent_at, "
                "event_id, correlation_id, created_at FROM messages",
    "pipeline_moves": "SELECT id, lead_id, from_stage, to_stage, reason, applied, occurred_at, event_id, "
                      "correlation_id, created_at FROM pipeline_moves",
    "proposals": "SELECT id, lead_id, proposal_ref, amount, currency, status, correlation_id, created_at, updated_at "
                 "FROM proposals",
    "obras": "SELECT id, lead_id, obra_ref, title, status, correlation_id, created_at FROM obras",
    # The assistant (sql/004_assistant.sql): its outcome per inbound message, and every handoff.
    "assistant_turns": "SELECT inbound_event_id AS id, lead_id, status, detail, attempts, fallback_sent_at, "
                       "reply_event_id, correlation_id, created_at FROM assistant_turns",
    "handoffs": "SELECT id, lead_id, handled_by, reason, actor, correlation_id, created_at FROM handoffs",
}


def _request_rows(cur: Cursor, correlation_ids: list[str], show_pii: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for table, select in _TABLES.items():
        where = ("correlation_id = ANY(%s::text[]) OR last_correlation_id = ANY(%s::text[])" if table == "leads"
                 else "correlation_id = ANY(%s::text[])")
        args = (correlation_ids, correlation_ids) if table == "leads" else (correlation_ids,)
        rows += [_describe(table, r, correlation_ids, show_pii) for r in _select(cur, f"{select} WHERE {where}", *args)]
    return rows


def _lead_rows(cur: Cursor, lead_ids: list[str], show_pii: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for table, select in _TABLES.items():
        column = "id" if table == "leads" else "lead_id"
        found = _select(cur, f"{select} WHERE {column}::text = ANY(%s::text[])", lead_ids)
        rows += [_describe(table, r, None, show_pii) for r in found]
    return rows


def _describe(table: str, row: dict[str, Any], correlation_ids: list[str] | None, show_pii: bool) -> dict[str, Any]:
    """One row as a timeline step: when it was written, what it is, which request wrote it."""
    def pii(text: Any, phone: bool = False) -> str:
        if text is None:
            return "-"
        return str(text) if show_pii else (mask_phone(str(text)) if phone else mask_text(str(text)))

    at: datetime = row["created_at"]
    cid = row["correlation_id"]
    if table == "leads":
        created_here = correlation_ids is None or row["correlation_id"] in correlation_ids
        what = "lead created" if created_here else "lead updated"
        if not created_here:
            at, cid = row["updated_at"], row["last_correlation_id"]
        detail = " ".join(str(part) for part in (row["id"], row["name"], f"phone {pii(row['phone'], phone=True)}",
                                                 f"email {pii(row['email'])}", f"source {row['source']}",
                                                 f"stage {row['stage']}") if part)
    elif table == "conversations":
        what, detail = "conversation", f"{row['id']} {row['provider']} chat {pii(row['chat_id'])} ({row['handled_by']})"
    elif table == "messages":
        what = f"message {row['direction']}"
        detail = f"{row['provider']} {row['message_type']} {row['provider_message_id']}: {pii(row['body'])[:80]}"
    elif table == "pipeline_moves":
        what = "stage move"
        detail = (f"{row['from_stage'] or '-'} -> {row['to_stage']} "
                  f"({'applied' if row['applied'] else 'kept, not applied: older than the current stage'})"
                  + (f": {row['reason']}" if row["reason"] else ""))
    elif table == "proposals":
        what, detail = "proposal", f"{row['proposal_ref']} {row['amount']} {row['currency']} {row['status']}"
    elif table == "assistant_turns":
        what = f"assistant {row['status']}"
        detail = (f"message {row['id']} attempts {row['attempts']}"
                  + (" fallback sent" if row["fallback_sent_at"] else "")
                  + (f" reply {row['reply_event_id']}" if row["reply_event_id"] else "")
                  + (f": {row['detail']}" if row["detail"] else ""))
    elif table == "handoffs":
        what = f"handoff to {row['handled_by']}"
        detail = f"{row['reason']}" + (f" by {row['actor']}" if row["actor"] else "")
    else:
        what, detail = "obra", f"{row['obra_ref']} {row['title']} {row['status']}"
    return {"table": table, "id": str(row["id"]), "at": at, "what": what, "detail": detail, "correlation_id": cid}


def logging_filter(correlation_ids: list[str], since: datetime | None = None, until: datetime | None = None) -> str:
    """The Cloud Logging query for these requests' log lines (every line carries correlation_id)."""
    ids = correlation_ids[:MAX_LOG_IDS]
    if len(ids) == 1:
        query = f'jsonPayload.correlation_id="{ids[0]}"'
    else:
        query = "jsonPayload.correlation_id=(" + " OR ".join(f'"{c}"' for c in ids) + ")"
    if since is not None:
        query += f' AND timestamp>="{_rfc3339(since)}"'
    if until is not None:
        query += f' AND timestamp<="{_rfc3339(until)}"'
    return query


def _rfc3339(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gcloud_command(correlation_ids: list[str], project: str, freshness: str = "7d") -> str:
    return (f"gcloud logging read '{logging_filter(correlation_ids)}' --project {project} "
            f"--freshness {freshness} --format json")


def read_logs(project: str, correlation_ids: list[str], since: datetime, until: datetime,
              limit: int = LOG_LIMIT, client: Any = None) -> list[dict[str, Any]]:
    """The log lines of these requests in [since, until], oldest first, at most `limit`, read page by page."""
    if client is None:
        from google.cloud import logging as cloud_logging

        endpoint = os.environ.get("CLOUD_LOGGING_ENDPOINT") or None
        client = cloud_logging.Client(project=project, _use_grpc=False,
                                      client_options={"api_endpoint": endpoint} if endpoint else None)
    entries = client.list_entries(resource_names=[f"projects/{project}"],
                                  filter_=logging_filter(correlation_ids, since, until),
                                  order_by="timestamp asc", page_size=min(LOG_PAGE_SIZE, limit), max_results=limit)
    return [_log_line(entry) for entry in entries]


def _log_line(entry: Any) -> dict[str, Any]:
    """One entry as the timeline shows it; the functions' own lines are already masked at the source."""
    payload = entry.payload if isinstance(entry.payload, dict) else {"message": str(entry.payload or "")}
    labels = dict(getattr(entry.resource, "labels", None) or {})
    function = payload.get("function") or labels.get("service_name") or labels.get("function_name") or "-"
    return {"at": entry.timestamp, "severity": entry.severity or "DEFAULT", "function": function,
            "correlation_id": payload.get("correlation_id"), "message": mask_text(str(payload.get("message", ""))),
            "insert_id": entry.insert_id}
