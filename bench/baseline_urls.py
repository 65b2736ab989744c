"""The portal's URLs plus one bare view for benches: a single INSERT of the raw body.

The table is created by the bench before the server starts (no migration):

    CREATE TABLE IF NOT EXISTS bench_insert (
        id bigserial PRIMARY KEY, body bytea, received_at timestamptz DEFAULT now()
    )
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from portal.urls import urlpatterns as portal_urlpatterns

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_insert ("
    "id bigserial PRIMARY KEY, body bytea, received_at timestamptz DEFAULT now())"
)


@csrf_exempt
def insert_body(request: HttpRequest) -> HttpResponse:
    """Store the raw body with one INSERT (autocommit) and answer "ok": nothing else."""
    if request.method != "POST":
        return HttpResponse("method not allowed", status=405, content_type="text/plain")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_insert (body) VALUES (%s)", [request.body])
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


urlpatterns = [*portal_urlpatterns, path("bench/insert/", insert_body, name="bench_insert")]
