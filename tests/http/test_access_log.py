"""The access log's writer and what it hides, without a server (the server's log: test_observability.py)."""

from __future__ import annotations

import json
import os
import time

import pytest

from annuaire.observability import accesslog
from annuaire.observability.logwriter import LineWriter


@pytest.mark.parametrize("query,shown", [
    (b"family=dupont&key=ak_SECRET", "family=dupont&key=***"),
    (b"api_key=SECRET&_count=5", "api_key=***&_count=5"),
    (b"access_token=SECRET&token=SECRET&password=SECRET", "access_token=***&token=***&password=***"),
    (b"Session=SECRET&signature=SECRET&name=a%20b", "Session=***&signature=***&name=a%20b"),
    (b"", ""),
])
def test_sensitive_query_values_are_hidden(query: bytes, shown: str) -> None:
    path = accesslog.path_with_query("/fhir/v2/Practitioner", query)
    assert path == "/fhir/v2/Practitioner" + (f"?{shown}" if shown else "")
    assert "SECRET" not in path


def test_password_assertions_of_a_filter_are_hidden() -> None:
    text = accesslog.filter_text("(&(cn=dup*)(userPassword=SECRET)(|(sn=x)(PASSWORD:caseExactMatch:=SECRET)))")
    assert "SECRET" not in text
    assert text.startswith("(&(cn=dup*)(userPassword=***)")


def test_a_reader_that_never_reads_holds_no_request() -> None:
    """Lines go to a pipe nobody reads: handing them over never blocks; beyond the capacity lines are
    dropped, and the count is written once the reader catches up."""
    read_end, write_end = os.pipe()
    writer = LineWriter(os.fdopen(write_end, "w"), lambda count: accesslog.json_line({"op": "dropped", "lines": count}),
                        capacity=1000, owned=True)
    try:
        started = time.monotonic()
        for n in range(20_000):  # ~2 MB: thirty times what a pipe holds
            writer.put(accesslog.json_line({"interface": "http", "n": n, "path": "/" + "p" * 80}))
        assert time.monotonic() - started < 10
        received = b""
        deadline = time.monotonic() + 20
        os.set_blocking(read_end, False)
        written: list[int] = []
        dropped = 0
        while len(written) + dropped < 20_000 and time.monotonic() < deadline:
            try:
                received += os.read(read_end, 1 << 16)
            except BlockingIOError:
                time.sleep(0.01)
            whole = received[:received.rfind(b"\n") + 1]  # (a read may end inside a line)
            lines = [json.loads(line) for line in whole.decode().splitlines()]
            written = [x["n"] for x in lines if "n" in x]
            dropped = sum(x["lines"] for x in lines if x.get("op") == "dropped")
        assert written == sorted(written) and len(set(written)) == len(written)  # whole lines, in order
        assert dropped > 0 and len(written) + dropped == 20_000
    finally:
        writer.close()
        os.close(read_end)


def test_text_lines_quote_what_needs_it() -> None:
    line = accesslog.text_line({"time": "T", "interface": "ldap", "client": "192.0.2.1", "op": "search",
                                "base": "o=annuaire-sante,c=fr", "filter": '(cn=a "b")', "entries": 3, "dn": ""})
    assert line == 'T ldap client=192.0.2.1 op=search base="o=annuaire-sante,c=fr" filter="(cn=a \\"b\\")" ' \
                   'entries=3 dn=""'


def test_a_burst_of_lines_goes_out_in_a_few_writes() -> None:
    """A busy server's lines are gathered: not one write (one writer wake-up) per request."""

    class Counting:
        def __init__(self) -> None:
            self.writes: list[str] = []

        def write(self, text: str) -> None:
            self.writes.append(text)

        def flush(self) -> None:
            pass

    stream = Counting()
    writer = LineWriter(stream, lambda n: f"{n} dropped")  # type: ignore[arg-type]  # a stream without a descriptor
    for i in range(100):  # a request every millisecond, for a tenth of a second
        writer.put(f"line {i}")
        time.sleep(0.001)
    deadline = time.monotonic() + 5
    while "".join(stream.writes).count("\n") < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "".join(stream.writes).splitlines() == [f"line {i}" for i in range(100)]
    assert len(stream.writes) <= 10
