"""The sign-in trail auditors read (SignInEvent): one function writes every kind of entry.

Password and single sign-on, sign-in and sign-out, refusals and sessions the identity provider
ended all land here, so an auditor finds them in one list and no entry is worded twice.
"""

import logging

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.http import HttpRequest

from dashboard.accounts.models import SignInEvent
from dashboard.ops import metrics
from dashboard.ops.client_ip import client_ip

logger = logging.getLogger(__name__)


def record_sign_in_event(
    kind: str, user: AbstractBaseUser | None, request: HttpRequest | None, *, detail: str = ""
) -> None:
    """Put a sign-in, refusal, sign-out or ended session on record for auditors; never raises.

    A sign-in must not fail because its record could not be written: the failure is counted and
    logged instead, and the log line beside it still says what happened. In a savepoint, so a
    failed write leaves a surrounding transaction usable. `detail` says why, in words; never a
    token, an e-mail address or a name.
    """
    try:
        with transaction.atomic():
            SignInEvent.objects.create(
                user=user,
                kind=kind,
                client_ip=(client_ip(request) or None) if request else None,
                request_id=getattr(request, "request_id", ""),
                detail=detail[:200],
            )
    except DatabaseError:
        metrics.AUDIT_WRITE_FAILURES.labels(action=kind).inc()
        logger.exception(
            "A %s event could not be recorded", kind, extra={"user_id": str(user.pk) if user else "-"}
        )
