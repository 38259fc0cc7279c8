"""One exception tree for the whole directory, translated at each edge.

    DirectoryError
    ├── InvalidInput                 bad data from outside (files, requests, packets)
    │   ├── ImportFileError          a national file that cannot be loaded (path, line)
    │   └── RuleViolation            a publication line breaking a rule (code)
    ├── NotFound
    ├── Unauthorized
    ├── Forbidden
    ├── Conflict                     refused because of the current state (stale file, mass delete…)
    └── TooManyRequests              refused for now: a rate limit or a throttle (retry_after seconds)

Each interface maps these in ONE place: HTTP problem+json, FHIR
OperationOutcome, LDAP result code, CLI exit code.
"""

from __future__ import annotations


class DirectoryError(Exception):
    """Base of every error the directory raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DirectoryError):
    exit_code = 2


class ImportFileError(InvalidInput):
    """A national file that cannot be loaded; names the file and the line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.detail = message
        self.line = line

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return ImportFileError, (self.path, self.detail, self.line)  # (raised again by the importer)


class RuleViolation(InvalidInput):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotFound(DirectoryError):
    exit_code = 3


class Unauthorized(DirectoryError):
    exit_code = 4


class Forbidden(DirectoryError):
    exit_code = 4


class Conflict(DirectoryError):
    exit_code = 5


class TooManyRequests(DirectoryError):
    """A rate limit or a failed-authentication throttle: retry after `retry_after` seconds."""

    exit_code = 6

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1 (RFC 9110 delay-seconds)."""
        return str(max(1, int(-(-self.retry_after // 1))))
