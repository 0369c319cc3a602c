"""Align's webhook receiver, and the question an open customer page asks: "anything newer?".

The receiver has no login and no CSRF check, because Align is the caller: the signature is its
only authentication (customers/align/webhooks.py). It answers within milliseconds and never calls
Align. Each step refuses what it can before the next costs more: the method, the sender's rate,
the size (from Content-Length, before a byte is read), the signature, then the JSON.

Every answer is JSON, `{"status": <result>}` plus `"error"` saying what was wrong, and every
delivery counts in /metrics by result. A refusal is logged once, by this module, with its reason
and never the body or the signature.
"""

import logging
import re
import uuid

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from customers.align import webhooks as align_webhooks
from customers.models import KycWebhookEvent
from customers.permissions import lookup_permission_required
from customers.services import webhooks
from customers.services.webhooks import DeliveryResult
from dashboard.ops import metrics
from dashboard.ops.client_ip import client_ip
from dashboard.ops.log_context import bind_customer

logger = logging.getLogger(__name__)

# What a page says it has seen: the ID of the newest webhook event it was rendered with.
EVENT_ID = re.compile(r"\d{1,18}")


@csrf_exempt
@never_cache
def align_webhook(request: HttpRequest) -> HttpResponse:
    """Receive one delivery from Align; 200 once it is stored (or known, or not ours to keep)."""
    if not settings.ALIGN_WEBHOOKS_ENABLED:
        raise Http404("Webhooks are not enabled.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    address = client_ip(request)
    rate = webhooks.take_rate(address)
    if not rate.allowed:
        if rate.first_refusal:
            logger.warning(
                "Align webhook refused: more than %s deliveries a minute from %s, until the minute ends",
                settings.ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE,
                address,
            )
        response = _answer(
            DeliveryResult.RATE_LIMITED, 429, "Too many deliveries from this address; wait for Retry-After."
        )
        response["Retry-After"] = str(rate.retry_after)
        # Logged above once a minute; Django's line per refusal would let a flood fill the log.
        response._has_been_logged = True
        return response
    refusal = _refuse_by_length(request)
    if refusal is not None:
        return refusal
    try:
        body = align_webhooks.read_body(request)
    except align_webhooks.BodyTooLarge:
        return _refused(DeliveryResult.TOO_LARGE, 413, _too_large_message(), "the body is over the limit")
    if not align_webhooks.signature_is_valid(body, request.headers.get(align_webhooks.SIGNATURE_HEADER)):
        return _refused(
            DeliveryResult.BAD_SIGNATURE,
            401,
            f"The {align_webhooks.SIGNATURE_HEADER} header is missing or does not match the body.",
            f"the signature is missing or wrong (from {address})",
        )
    try:
        delivery = align_webhooks.parse_delivery(body)
    except align_webhooks.InvalidDelivery as error:
        return _refused(DeliveryResult.BAD_REQUEST, 400, str(error), str(error))
    if delivery.event_type != align_webhooks.KYC_UPDATED:
        known = delivery.event_type in align_webhooks.OTHER_DOCUMENTED_TYPES
        logger.info("Align webhook ignored: %s event type", "a documented" if known else "an unknown")
        return _answer(DeliveryResult.IGNORED, 200)
    bind_customer(delivery.customer.customer_id)
    try:
        result = webhooks.store(delivery, body)
    except DatabaseError:
        logger.exception("Align webhook: the KYC update could not be stored; Align will deliver it again")
        return _answer(
            DeliveryResult.UNAVAILABLE, 503, "The delivery could not be stored; send it again later."
        )
    logger.info("Align webhook %s: KYC update", result)
    return _answer(result, 200)


def _refuse_by_length(request: HttpRequest) -> HttpResponse | None:
    """Refuse on the headers alone: a body announced as too long is never read."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared:
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            return _refused(
                DeliveryResult.BAD_REQUEST,
                411,
                "Send the body with a Content-Length.",
                "a chunked body without Content-Length",
            )
        return None
    if not declared.isdigit():
        return _refused(
            DeliveryResult.BAD_REQUEST,
            400,
            "Content-Length is not a number.",
            "Content-Length is not a number",
        )
    if int(declared) > align_webhooks.MAX_BODY_BYTES:
        return _refused(
            DeliveryResult.TOO_LARGE, 413, _too_large_message(), "Content-Length is over the limit"
        )
    return None


def _too_large_message() -> str:
    return f"The body is over {align_webhooks.MAX_BODY_BYTES // 1024} KiB."


def _refused(result: DeliveryResult, status: int, error: str, reason: str) -> HttpResponse:
    """A refusal, logged here in one line: Django's own "Unauthorized: /webhooks/align/" would be a second."""
    logger.warning("Align webhook refused (%s): %s", status, reason)
    response = _answer(result, status, error)
    # Read by django.utils.log.log_response: this answer has been logged already.
    response._has_been_logged = True
    return response


def _answer(result: DeliveryResult, status: int, error: str | None = None) -> JsonResponse:
    metrics.WEBHOOK_DELIVERIES.labels(result=result).inc()
    body = {"status": str(result)} | ({"error": error} if error else {})
    return JsonResponse(body, status=status)


@require_GET
@lookup_permission_required
@never_cache
def kyc_changes(request: HttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """Has a webhook for this customer arrived since the page was rendered? 204 if not.

    Asked every few seconds by each open page of a pending customer (static/js/watch.js), so it
    costs one indexed query (webhook_customer_recent) and nothing else: no call to Align, no
    audit row. It says only that something newer arrived, never what: the page then looks the
    customer up again, and that lookup is audited.
    """
    if not settings.ALIGN_WEBHOOKS_ENABLED:
        raise Http404("Webhooks are not enabled.")
    after = request.GET.get("after", "")
    if not EVENT_ID.fullmatch(after):
        return JsonResponse(
            {"error": "after must be the ID of a webhook event: a whole number, 0 or more."}, status=400
        )
    newer = KycWebhookEvent.objects.filter(customer_id=customer_id, id__gt=int(after)).order_by("-id")
    try:
        newest = newer.values_list("id", flat=True).first()
    except DatabaseError:
        logger.exception("The webhook events of customer %s could not be read", customer_id)
        return JsonResponse({"error": "Changes can't be checked right now."}, status=503)
    if newest is None:
        return HttpResponse(status=204)
    return JsonResponse({"changed": True, "newest": newest})
