"""Benchmark the platform API in-process: token verification and each endpoint with both tokens.

Runs against the demo data (run `seed_demo` first) inside a transaction that is rolled back, so the
writes it measures leave nothing behind. Prints p50/p95/p99 in milliseconds; `--json OUT` writes them.
"""

import json
import statistics
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client

from governance.tokens import issue_local_user_token, mint_service_token, verify_service_token, verify_user_token
from support.models import Calendar


class _Rollback(Exception):
    pass


def _percentiles(samples_ms: list[float]) -> dict:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p95": round(cuts[94], 3), "p99": round(cuts[98], 3), "n": len(samples_ms)}


def _timed(call, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


class Command(BaseCommand):
    help = "Measure token verification and platform API latency with both tokens (in-process, demo data)."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=300, help="requests per endpoint")
        parser.add_argument("--json", dest="json_path", help="also write the figures to this file")

    def handle(self, *args, requests: int, json_path: str | None, **options):
        user = get_user_model().objects.filter(username="claire.martin").first()
        grantee = get_user_model().objects.filter(username="julie.bernard").first()
        if user is None or grantee is None:
            raise CommandError("Run `python manage.py seed_demo` first.")
        calendar = Calendar.objects.get(owner=user, name="Consultations Dr Martin")
        service, user_token = mint_service_token(), issue_local_user_token(user)
        client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {service}", HTTP_X_USER_TOKEN=user_token)
        levels = iter(["book", "view"] * requests)

        def put():
            client.put(
                f"/api/v1/calendars/{calendar.pk}/access/{grantee.pk}/",
                {"level": next(levels)},
                content_type="application/json",
            )

        figures = {
            "verify_service_token": _percentiles(_timed(lambda: verify_service_token(service), requests)),
            "verify_user_token": _percentiles(_timed(lambda: verify_user_token(user_token), requests)),
        }
        try:
            with transaction.atomic():
                for name, call in [
                    ("GET /api/v1/me/", lambda: client.get("/api/v1/me/")),
                    ("GET /api/v1/calendars/", lambda: client.get("/api/v1/calendars/")),
                    (
                        "GET /api/v1/calendars/{id}/access/",
                        lambda: client.get(f"/api/v1/calendars/{calendar.pk}/access/"),
                    ),
                    ("PUT /api/v1/calendars/{id}/access/{user}/", put),
                ]:
                    call()  # warm-up
                    figures[name] = _percentiles(_timed(call, requests))
                raise _Rollback
        except _Rollback:
            pass
        for name, row in figures.items():
            self.stdout.write(
                f"{name:<45} p50 {row['p50']:7.2f} ms  p95 {row['p95']:7.2f} ms  p99 {row['p99']:7.2f} ms"
            )
        if json_path:
            with open(json_path, "w") as handle:
                json.dump(figures, handle, indent=2)
