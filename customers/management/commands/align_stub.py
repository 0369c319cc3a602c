"""Serve the local stand-in of the Align Customers API."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from customers.align.standin.demo import (
    DEMO_DESCRIPTIONS,
    DRILL_DESCRIPTIONS,
    GENERATED_DRILL_EVERY,
    GENERATED_DRILLS,
    GENERATED_LIMIT,
    generated_customer_id,
)
from customers.align.standin.server import StubServer


def webhook_url(text: str) -> str:
    """An http(s) URL, or "" (argparse passes the default through here too): no webhooks."""
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("an http(s) URL")
    return text


def generated_count(text: str) -> int:
    count = int(text)
    if not 0 <= count <= GENERATED_LIMIT:
        raise ValueError(f"at most {GENERATED_LIMIT}")
    return count


class Command(BaseCommand):
    help = "Serve a local stand-in of the Align Customers API with demo customers (Ctrl-C stops it)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument(
            "--api-key",
            default=None,
            help="The key callers must send in Api-Key (default: ALIGN_API_KEY from the environment).",
        )
        parser.add_argument("--delay", type=float, default=0.0, help="Seconds to wait before every answer.")
        parser.add_argument(
            "--slow-seconds",
            type=float,
            default=30.0,
            help="How long the 'slower than the timeout' drill takes to answer.",
        )
        parser.add_argument(
            "--generate",
            type=generated_count,
            default=0,
            metavar="N",
            help="Also serve N generated customers with deterministic IDs, for bulk lookups.",
        )
        parser.add_argument(
            "--webhook-url",
            type=webhook_url,
            default="",
            metavar="URL",
            help="POST every change of a customer's KYC here as a signed customer.kycs.updated "
            "delivery, as Align does (e.g. http://127.0.0.1:8000/webhooks/align/).",
        )
        parser.add_argument(
            "--print-generated",
            type=generated_count,
            default=None,
            metavar="N",
            help="Print the IDs of the first N generated customers, one per line, and exit.",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        api_key: str | None,
        delay: float,
        slow_seconds: float,
        generate: int,
        print_generated: int | None,
        webhook_url: str,
        **options,
    ):
        if print_generated is not None:
            for index in range(print_generated):
                self.stdout.write(generated_customer_id(index))
            return
        api_key = api_key if api_key is not None else settings.ALIGN_API_KEY
        if not api_key:
            raise CommandError("No API key: pass --api-key or set ALIGN_API_KEY.")
        try:
            server = StubServer(
                (host, port),
                api_key=api_key,
                delay=delay,
                slow_seconds=slow_seconds,
                generate=generate,
                webhook_url=webhook_url,
            )
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error.strerror}") from None
        self.stdout.write(f"Align stand-in serving on {server.base_url} (Api-Key required; Ctrl-C stops it)")
        for customer_id, description in {**DEMO_DESCRIPTIONS, **DRILL_DESCRIPTIONS}.items():
            self.stdout.write(f"  {customer_id}  {description}")
        delivered = f"; KYC changes are delivered to {webhook_url}" if webhook_url else ""
        self.stdout.write(
            '  POST /v0/customers/simulate with {"action": "kyc.status.approve", "customer_id": ...} '
            f"approves a customer{delivered}"
        )
        if generate:
            drills = ", ".join(f"{drill} at index {index}" for index, drill in GENERATED_DRILLS.items())
            self.stdout.write(
                f"  and {generate} generated customers (`align_stub --print-generated {generate}` lists "
                f"them); every {GENERATED_DRILL_EVERY}: {drills}"
            )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Align stand-in stopped.")
        finally:
            server.server_close()
