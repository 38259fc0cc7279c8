"""Reading the HTML the server sends: links, form controls and labels, visible text."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Page:
    links: list[str] = field(default_factory=list)
    controls: list[tuple[str, str]] = field(default_factory=list)  # (tag, id) of inputs and selects
    label_for: set[str] = field(default_factory=set)
    copy_buttons: list[str] = field(default_factory=list)
    headings: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    html_lang: str = ""
    metas: dict[str, str] = field(default_factory=dict)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._chunks: list[str] = []
        self._heading: str | None = None
        self._heading_text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.page.html_lang = a.get("lang", "")
        elif tag == "meta" and "name" in a:
            self.page.metas[a["name"]] = a.get("content", "")
        elif tag == "a" and "href" in a:
            self.page.links.append(a["href"])
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.page.controls.append((tag, a.get("id", "")))
        elif tag == "label" and "for" in a:
            self.page.label_for.add(a["for"])
        elif tag == "button" and "data-copy" in a:
            self.page.copy_buttons.append(a["data-copy"])
        elif tag in ("h1", "h2", "h3"):
            self._heading, self._heading_text = tag, []
        elif tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == self._heading:
            self.page.headings.append((tag, " ".join("".join(self._heading_text).split())))
            self._heading = None
        elif tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self._chunks.append(data)
        if self._heading:
            self._heading_text.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join(" ".join(self._chunks).split())


def read(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page


def people(html: str) -> list[str]:
    """National ids of the professionals linked from a page, in page order, once each."""
    seen: list[str] = []
    for href in read(html).links:
        if href.startswith("/pro/") and href[5:] not in seen:
            seen.append(href[5:])
    return seen


def structures(html: str) -> list[str]:
    seen: list[str] = []
    for href in read(html).links:
        if href.startswith("/structure/") and href[11:].split("?")[0] not in seen:
            seen.append(href[11:].split("?")[0])
    return seen
