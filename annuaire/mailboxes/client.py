"""The operator side: send a list file to a directory's publication API (`annuaire publish`).

A refusal comes back as the class the server raised, rebuilt from the
problem's `code` (annuaire.errors.rebuild), so the CLI exits with its code.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import httpx

from annuaire.errors import DirectoryError, InvalidInput, rebuild
from annuaire.http.errors import STATUS


def content_type(path: Path, body: bytes) -> str:
    """JSON for `.json` files (or a body starting with `{`), else the `|`-separated text layout."""
    if path.suffix.lower() == ".json" or body.lstrip()[:1] == b"{":
        return "application/json"
    return "text/csv"


def publish_file(
    server: str, token: str, domain: str, path: Path, *,
    dry_run: bool = False, confirm_mass_delete: bool = False, if_match: str | None = None,
    timeout: float = 600.0, ca: str | None = None, cert: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """PUT the file as the domain's complete list; returns the report or raises the server's problem.

    `ca`: CA bundle to verify the server; `cert`: (certificate, key) files of a TLS client certificate.
    """
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    params = {k: "true" for k, on in (("dry_run", dry_run), ("confirm_mass_delete", confirm_mass_delete)) if on}
    headers = {"Content-Type": content_type(path, body)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if if_match:
        headers["If-Match"] = if_match
    url = f"{server.rstrip('/')}/api/v1/domains/{domain}/mailboxes"
    verify: bool | ssl.SSLContext = True
    if ca or cert:
        verify = ssl.create_default_context(cafile=ca)
        if cert:
            try:
                verify.load_cert_chain(*cert)
            except (OSError, ssl.SSLError) as exc:
                raise InvalidInput(f"cannot load the client certificate {cert[0]} / {cert[1]}: {exc}") from exc
    try:
        with httpx.Client(timeout=timeout, verify=verify) as client:
            response = client.put(url, content=body, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise DirectoryError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 200:
        report = response.json()
        if headers["Content-Type"] == "application/json":
            number_json_findings(report, body)
        return report
    raise refusal(response)


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:,\n]')


def json_item_lines(body: bytes) -> list[int]:
    """The line (1-based) where each item of the top-level "mailboxes" array starts in a JSON
    file, so that a finding points where the operator's editor does (the server only knows
    the item's position)."""
    lines: list[int] = []
    line, depth, key, last, inside = 1, 0, None, None, False
    for match in _JSON_TOKEN.finditer(body):
        token = match.group()
        if token == b"\n":
            line += 1
        elif token[:1] == b'"':
            last = token
        elif token == b":" and depth == 1:
            key = last
        elif token in (b"{", b"["):
            if inside and depth == 2 and token == b"{":
                lines.append(line)
            depth += 1
            if depth == 2 and token == b"[" and key == b'"mailboxes"':
                inside = True
        elif token in (b"}", b"]"):
            depth -= 1
            if depth == 1:
                inside = False
    return lines


def number_json_findings(report: dict[str, Any], body: bytes) -> None:
    """Give the JSON file's line to each finding (text bodies have it from the server)."""
    findings = [f for key in ("rejected", "warnings") for f in report.get(key) or [] if f.get("line") is None]
    if not findings:
        return
    lines = json_item_lines(body)
    for finding in findings:
        index = finding.get("index")
        if isinstance(index, int) and 0 <= index < len(lines):
            finding["line"] = lines[index]


def refusal(response: httpx.Response) -> DirectoryError:
    """The server's problem as its error class; without a known code (a proxy's answer, say), the
    most general class of its status in the one mapping (annuaire.http.errors.STATUS)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {}
    detail = problem.get("detail") or response.text
    statuses = (cls for cls, status in STATUS.items() if status == response.status_code)
    fallback = next(statuses, InvalidInput if 400 <= response.status_code < 500 else DirectoryError)
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    return rebuild(code, f"{response.status_code}: {detail}", fallback)
