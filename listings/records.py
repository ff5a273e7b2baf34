"""Recording the channel's answer to an inventory push on the listings, set-based (one
statement each): used by the push itself (`listings.push`) and by the processing reports of
feeds read later (`listings.feeds`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.db import connection

from channels.adapters import PushReply
from channels.sync.runs import REPORT_LIMIT, Tally

from .models import ChannelListing
from .quantity import explain

TABLE = ChannelListing._meta.db_table


@dataclass
class Row:
    """One listing of a chunk: what it is, what it should be now, what the channel has."""

    id: int
    label: str
    product_id: str
    variant_id: str
    sku_id: int
    buffer: int
    pushed: int | None
    status: str
    quantity: int = 0
    terms: dict = field(default_factory=dict)


class Pushing(Protocol):
    """What recording needs of a run (`listings.push.Push`)."""

    channel: object
    run: object
    tally: Tally


def json_terms(terms: dict) -> str:
    """Terms as the jsonb the statements compare (`wanted_terms IS DISTINCT FROM`)."""
    return json.dumps(terms, separators=(",", ":"), sort_keys=True)


def sort_reply(reply: PushReply, batch: list[Row], accepted: list, failed: list) -> None:
    """The contract names failed listings by productId (its variants fail together)."""
    reasons = {product: message for product, message in reply.failed}
    whole = reply.status == "FAILED"
    if whole and not reasons:
        why = reply.error or "the channel refused the inventory update (FAILED)"
        failed += [(row, why) for row in batch]
        return
    for row in batch:
        if row.product_id in reasons:
            failed.append((row, reasons[row.product_id] or f"refused ({reply.status})"))
        elif whole:
            failed.append((row, reply.error or "refused (FAILED)"))
        else:
            accepted.append(row)


def record_accepted(rows: list[Row], at: datetime, push: Pushing, answer: str = "") -> None:
    """`pushed_*` of the accepted listings in one statement, never over a newer push."""
    if not rows:
        return
    answer = answer or f"Accepted by {push.channel.code} (run #{push.run.pk})"
    sql = (
        f"UPDATE {TABLE} AS t SET pushed_quantity = v.q, pushed_terms = v.terms, "
        "pushed_at = %s, push_answer = %s, push_attempts = 0, updated_at = now(), "
        "push_status = CASE WHEN t.wanted_quantity = v.q THEN 'IN_SYNC' ELSE 'PENDING' END "
        "FROM unnest(%s::bigint[], %s::integer[], %s::jsonb[]) AS v(id, q, terms) "
        "WHERE t.id = v.id AND (t.pushed_at IS NULL OR t.pushed_at <= %s)"
    )
    ids = [r.id for r in rows]
    params = [at, answer, ids, [r.quantity for r in rows], [json_terms(r.terms) for r in rows], at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    tally = push.tally
    tally.seen += len(rows)
    tally.changed += len(rows)
    if tally.report_all:
        room = max(0, REPORT_LIMIT - len(tally.report))
        tally.report += [[r.label, "CHANGED", explain(r.terms)] for r in rows[:room]]


def record_sent(rows: list[Row], push: Pushing, answer: str) -> None:
    """SENT with what was said, one statement: the channel's report decides later."""
    if not rows:
        return
    sql = (
        f"UPDATE {TABLE} SET push_status = 'SENT', push_answer = %s, updated_at = now() "
        "WHERE id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [answer, [r.id for r in rows]])
    push.tally.seen += len(rows)


def record_failed(failed: list[tuple[Row, str]], push: Pushing) -> None:
    """FAILED with the reason, one statement; the next run sends them again."""
    if not failed:
        return
    sql = (
        f"UPDATE {TABLE} AS t SET push_status = 'FAILED', push_answer = v.why, "
        "push_attempts = least(t.push_attempts + 1, 32767), updated_at = now() "
        "FROM unnest(%s::bigint[], %s::text[]) AS v(id, why) WHERE t.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[r.id for r, _ in failed], [why[:2000] for _, why in failed]])
    tally = push.tally
    tally.seen += len(failed)
    tally.failed += len(failed)
    room = max(0, REPORT_LIMIT - len(tally.report))
    tally.report += [[r.label, "FAILED", why] for r, why in failed[:room]]
