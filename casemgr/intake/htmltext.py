"""HTML mail bodies to plain text with the stdlib parser: nothing is rendered, scripts and hidden text are dropped.

Hidden text (display:none, the `hidden` attribute, zero-size fonts) is dropped because it is invisible to the
customer who wrote the mail but would be visible to the AI: a classic prompt-injection carrier.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never customer-visible text.
SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "iframe", "object", "embed",
                  "svg", "math", "select", "textarea", "xml"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})
BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
                   "ul", "ol", "hr", "section", "article", "header", "footer", "dd", "dt", "center", "form"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|"
                           r"opacity\s*:\s*0(?![.\d]*[1-9])", re.I)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_stack: list[str] = []

    def _hidden(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in SKIP:
            return True
        for name, value in attrs:
            if name == "hidden" or (name == "aria-hidden" and (value or "").lower() == "true"):
                return True
            if name == "style" and value and _HIDDEN_STYLE.search(value):
                return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID and (self.skip_stack or self._hidden(tag, attrs)):
            self.skip_stack.append(tag)
            return
        if self.skip_stack:
            return
        if tag in BLOCK:
            self.parts.append("\n")
        elif tag == "td":
            self.parts.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f"[image: {alt}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skip_stack and tag in BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_stack:
            if tag in self.skip_stack:
                while self.skip_stack and self.skip_stack.pop() != tag:
                    pass
            return
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_stack:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - malformed HTML must still give us something readable
        return re.sub(r"<[^>]*>", " ", html)
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()
