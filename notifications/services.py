"""What staff do to notifications (from the admin): retry now, discard with a reason."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.results import Outcome

from .models import Notification, NotificationState
from .outbox import kick_after_commit

RETRYABLE = (NotificationState.PENDING, NotificationState.FAILED)
MAX_REASON = 255


def _lock(ids) -> list[Notification]:
    return list(Notification.objects.select_for_update().filter(pk__in=list(ids)).order_by("pk"))


def notifications_retry(ids, *, actor=None) -> Outcome:
    """Make pending or failed notifications due now, with a fresh allowance of refusals
    (a FAILED one stops holding back its order); delivery is queued after commit."""
    outcome = Outcome()
    now = timezone.now()
    with transaction.atomic():
        rows = _lock(ids)
        ok = []
        for n in rows:
            if n.state not in RETRYABLE:
                outcome.fail(n, f"notification is {n.state}: only pending or failed are retried")
            elif n.claim_token and n.claimed_until and n.claimed_until > now:
                outcome.fail(n, "notification is being sent right now")
            else:
                ok.append(n.pk)
                outcome.done.append(n)
        if ok:
            Notification.objects.filter(pk__in=ok).update(
                state=NotificationState.PENDING, next_attempt_at=now, rejections=0
            )
            kick_after_commit()
    return outcome


def notifications_discard(ids, *, reason: str, actor=None) -> Outcome:
    """Give up on pending or failed notifications (they stop holding back their orders)."""
    actor = Actor.of(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("Give a reason for discarding the notifications")
    if len(reason) > MAX_REASON:
        raise ValueError(f"The reason is longer than {MAX_REASON} characters")
    outcome = Outcome()
    now = timezone.now()
    with transaction.atomic():
        rows = _lock(ids)
        ok = []
        for n in rows:
            if n.state not in RETRYABLE:
                outcome.fail(n, f"notification is {n.state}: only pending or failed are discarded")
            elif n.claim_token and n.claimed_until and n.claimed_until > now:
                outcome.fail(n, "notification is being sent right now; try again in a moment")
            else:
                ok.append(n.pk)
                outcome.done.append(n)
        if ok:
            Notification.objects.filter(pk__in=ok).update(
                state=NotificationState.DISCARDED,
                discard_reason=reason,
                discarded_by=actor.user,
                discarded_at=now,
            )
            kick_after_commit()  # the orders' later notifications may go now
    return outcome
