"""HTML mail bodies to plain text with the stdlib parser: nothing is rendered, scripts and hidden text are dropped.

Hidden text (display:none, the `hidden` attribute, zero or tiny fonts, text in nearly the colour of its background,
such as white on white) is dropped because it is invisible to the person reading the mail but would be visible to
the AI: a classic prompt-injection carrier. Colours are followed down the element tree from the `style`,
`color`/`bgcolor` attributes; the page background is taken to be white.
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
                           r"font-size\s*:\s*[0-2](\.\d+)?px|opacity\s*:\s*0(?![.\d]*[1-9])", re.I)
_STYLE_COLOR = re.compile(r"(?:^|;)\s*color\s*:\s*([^;!]+)", re.I)
_STYLE_BACKGROUND = re.compile(r"(?:^|;)\s*background(?:-color)?\s*:\s*([^;!]+)", re.I)
_NAMED = {"white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 128, 0),
          "blue": (0, 0, 255), "yellow": (255, 255, 0), "gray": (128, 128, 128), "grey": (128, 128, 128),
          "silver": (192, 192, 192), "whitesmoke": (245, 245, 245), "snow": (255, 250, 250),
          "ivory": (255, 255, 240), "transparent": None}
RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
MIN_CONTRAST = 1.5  # WCAG contrast ratio; body text needs 4.5, below 1.5 a reader sees (almost) nothing


def parse_color(value: str | None) -> RGB | None:
    """#rgb, #rrggbb, rgb(r, g, b) or a common colour name; None when unknown (the inherited colour stays)."""
    if not value:
        return None
    v = value.strip().lower()
    for token in v.split():  # `background: #fff url(...) no-repeat`: the colour is one of the tokens
        if token in _NAMED:
            return _NAMED[token]
        m = re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", token)
        if m:
            h = m.group(1)
            h = "".join(c * 2 for c in h) if len(h) == 3 else h
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    m = re.search(r"rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})", v)
    if m:
        r, g, b = (min(255, int(x)) for x in m.groups())
        return r, g, b
    return None


def _luminance(c: RGB) -> float:
    def channel(x: int) -> float:
        s = x / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(x) for x in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_stack: list[str] = []
        self.colors: list[tuple[str, RGB, RGB]] = [("", BLACK, WHITE)]  # (tag, text colour, background)

    def _hidden(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in SKIP:
            return True
        for name, value in attrs:
            if name == "hidden" or (name == "aria-hidden" and (value or "").lower() == "true"):
                return True
            if name == "style" and value and _HIDDEN_STYLE.search(value):
                return True
        return False

    def _colors(self, attrs: list[tuple[str, str | None]]) -> tuple[RGB, RGB]:
        _, fg, bg = self.colors[-1]
        for name, value in attrs:
            if not value:
                continue
            if name == "color":
                fg = parse_color(value) or fg
            elif name == "bgcolor":
                bg = parse_color(value) or bg
            elif name == "style":
                m = _STYLE_COLOR.search(value)
                fg = (parse_color(m.group(1)) if m else None) or fg
                m = _STYLE_BACKGROUND.search(value)
                bg = (parse_color(m.group(1)) if m else None) or bg
        return fg, bg

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID and (self.skip_stack or self._hidden(tag, attrs)):
            self.skip_stack.append(tag)
            return
        if self.skip_stack:
            return
        if tag not in VOID:
            self.colors.append((tag, *self._colors(attrs)))
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
        if any(t == tag for t, _, _ in self.colors[1:]):
            while len(self.colors) > 1 and self.colors.pop()[0] != tag:
                pass
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        _, fg, bg = self.colors[-1]
        # White on white and the like: unreadable to a person, so not for the AI either.
        if not self.skip_stack and contrast(fg, bg) >= MIN_CONTRAST:
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
