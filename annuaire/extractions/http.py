"""Download endpoints of the daily extractions (`annuaire serve`).

    GET|HEAD /extractions/                                  the available extractions (JSON, or HTML for browsers)
    GET|HEAD /extractions/Extraction_Correspondance_MSSante the latest zip
    GET|HEAD /extractions/PS_LibreAcces                     the latest zip
    GET|HEAD /extractions/<Name>_<ts>.zip | .json           one dated zip or manifest

Zips are answered with a strong ETag (the zip's SHA-256 from its manifest),
Last-Modified (the generation time), `Content-Disposition: attachment;
filename=<Name>_<ts>.zip` and a `Link` to the manifest. If-None-Match /
If-Modified-Since give 304; Range / If-Range (resumable downloads, 206 and
416) are served by Starlette's FileResponse. Failures, unknown paths and
methods are problem+json (the edge of annuaire.http.errors).
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from annuaire import formats
from annuaire.config import Settings
from annuaire.errors import ImportFileError, NotFound
from annuaire.extractions import catalog
from annuaire.extractions.catalog import PublishedExtraction
from annuaire.http.errors import Edge, Problem
from annuaire.store import Store
from annuaire.store.clock import from_stored

LATEST_CACHE = "no-cache"  # always revalidate: the latest changes every day
DATED_CACHE = "public, max-age=31536000, immutable"


def routes(store: Store, settings: Settings) -> list[BaseRoute]:
    outdir = Path(settings.extractions_dir)

    async def listing(request: Request) -> Response:
        return _listing(request, outdir, settings.extractions_keep_days, settings)

    async def download(request: Request) -> Response:
        return _download(request, outdir, request.path_params["name"])

    known = [
        Route("/extractions/", listing, methods=["GET", "HEAD"]),
        Route("/extractions/{name}", download, methods=["GET", "HEAD"]),
    ]
    return [Edge("/extractions", known, Problem(), not_found="no extraction at {path}; see /extractions/")]


def _download(request: Request, outdir: Path, name: str) -> Response:
    if name in catalog.KINDS:
        entry = catalog.latest(outdir, name)
        if entry is None:
            raise NotFound(f"no {name} extraction has been generated yet; it is generated at start-up and daily")
        return _zip_response(request, entry, LATEST_CACHE)
    parsed = formats.parse_file_name(name)
    if parsed is None or parsed[0] not in catalog.KINDS:
        raise NotFound(f"unknown extraction {name!r}; see /extractions/")
    for entry in catalog.list_extractions(outdir, parsed[0]):
        if entry.ts == parsed[1]:
            if name.endswith(".json"):
                return Response(
                    entry.manifest().to_json(), media_type="application/json", headers={"Cache-Control": DATED_CACHE}
                )
            return _zip_response(request, entry, DATED_CACHE)
    raise NotFound(f"{name} is not available (kept extractions are listed at /extractions/)")


def _zip_response(request: Request, entry: PublishedExtraction, cache_control: str) -> Response:
    manifest = entry.manifest()
    etag = f'"{manifest.zip["sha256"]}"'
    modified = from_stored(manifest.generated_at).replace(microsecond=0)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": cache_control,
        "Link": f'</extractions/{manifest.file_name}>; rel="describedby"; type="application/json"',
    }
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = f"attachment; filename={entry.zip_path.name}"
    try:
        stat = entry.zip_path.stat()
    except FileNotFoundError:  # pruned between listing and answering
        raise NotFound(f"{entry.zip_path.name} was just removed; retry") from None
    return FileResponse(entry.zip_path, media_type="application/zip", headers=headers, stat_result=stat)


def _not_modified(request: Request, etag: str, modified) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        return "*" in tags or etag in tags or f"W/{etag}" in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return modified <= since
    return False


def _listing(request: Request, outdir: Path, keep_days: int, settings: Settings | None = None) -> Response:
    items = []
    for entry in reversed(catalog.list_extractions(outdir)):
        try:
            manifest = entry.manifest()
        except (ImportFileError, OSError):  # a broken or just-removed manifest is not offered
            continue
        items.append(
            {
                "name": entry.name,
                "timestamp": entry.ts,
                "generated_at": manifest.generated_at,
                "url": f"/extractions/{entry.zip_path.name}",
                "manifest_url": f"/extractions/{manifest.file_name}",
                "bytes": manifest.zip["bytes"],
                "sha256": manifest.zip["sha256"],
                "files": manifest.files,
            }
        )
    latest = {kind: f"/extractions/{kind}" for kind in catalog.KINDS}
    if "text/html" in request.headers.get("accept", "") and "application/json" not in request.headers.get("accept", ""):
        return _html(request, settings or Settings(), items, keep_days)
    return JSONResponse({"keep_days": keep_days, "latest": latest, "extractions": items})


_TITLES = {
    formats.MSSANTE: "Boîtes aux lettres MSSanté publiées",
    formats.PS_LIBRE_ACCES: "Professionnels de santé (PS_LibreAcces)",
}


def _html(request: Request, settings: Settings, items: list[dict], keep_days: int) -> Response:
    """The listing for browsers, in the web pages' layout (annuaire/web/templates/extractions.html)."""
    from annuaire.web.views import HEADERS, page_html

    rows = [
        {
            "title": _TITLES[i["name"]],
            "generated": _paris(i["timestamp"]),
            "url": i["url"],
            "file": i["url"].rsplit("/", 1)[1],
            "size": f"{i['bytes'] / 1e6:.1f} Mo".replace(".", ","),
            "lines": _count(sum(f["lines"] for f in i["files"])),
            "manifest_url": i["manifest_url"],
        }
        for i in items
    ]
    titles = [(kind, _TITLES[kind]) for kind in (formats.MSSANTE, formats.PS_LIBRE_ACCES)]
    text = page_html(request, settings, "extractions.html", items=rows, keep_days=keep_days, titles=titles)
    return HTMLResponse(text, headers=HEADERS)


def _count(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def _paris(ts: str) -> str:
    return f"{ts[6:8]}/{ts[4:6]}/{ts[0:4]} {ts[8:10]}:{ts[10:12]}"
