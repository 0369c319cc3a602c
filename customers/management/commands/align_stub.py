"""Serve the local stand-in of the Align Customers API."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from customers.stub import DEMO_DESCRIPTIONS, DRILL_DESCRIPTIONS, StubServer


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

    def handle(
        self, *args, host: str, port: int, api_key: str | None, delay: float, slow_seconds: float, **options
    ):
        api_key = api_key if api_key is not None else settings.ALIGN_API_KEY
        if not api_key:
            raise CommandError("No API key: pass --api-key or set ALIGN_API_KEY.")
        try:
            server = StubServer((host, port), api_key=api_key, delay=delay, slow_seconds=slow_seconds)
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error.strerror}") from None
        self.stdout.write(f"Align stand-in serving on {server.base_url} (Api-Key required; Ctrl-C stops it)")
        for customer_id, description in {**DEMO_DESCRIPTIONS, **DRILL_DESCRIPTIONS}.items():
            self.stdout.write(f"  {customer_id}  {description}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Align stand-in stopped.")
        finally:
            server.server_close()
