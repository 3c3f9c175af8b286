"""HTML mail bodies to plain text with the stdlib parser: nothing is rendered, scripts are dropped, and text the
reader cannot see is separated from the text they can.

Hidden text (display:none, zero or sub-point fonts, transparent or background-coloured text, off-screen positions,
max-height:0, opacity:0, ...) is invisible to the person reading the mail but would be visible to the AI and the
rules: a classic prompt-injection carrier (issue 18). It is returned apart, for the audit trail, never as body.

Visibility follows the CSS that mail clients honour, with inheritance (issue 19): font size, colour and
`visibility` are inherited and a child's own value wins, so 28pt text inside a 1px container is visible; what
removes a whole subtree (display:none, opacity:0, max-height:0, off-screen, clip) cannot be undone by a child.
Only inline `style` attributes and the legacy `color`/`bgcolor`/`size`/`hidden` attributes are read: mail clients
strip or ignore most <style> sheets, so no selector matching is attempted. The page background is white.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser

# Elements whose content is never customer-visible text.
SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "iframe", "object", "embed",
                  "svg", "math", "select", "textarea", "xml"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})
BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
                   "ul", "ol", "hr", "section", "article", "header", "footer", "dd", "dt", "center", "form"})
RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, float]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
MIN_CONTRAST = 1.5  # WCAG contrast ratio; body text needs 4.5, below 1.5 a reader sees (almost) nothing
MIN_FONT_PX = 2.5  # below about 2px (1.5pt) text is a line of dots, not something a person reads
MIN_ALPHA = 0.15  # colour or opacity more transparent than this leaves text unreadable
OFFSCREEN_PX = -500.0
DEFAULT_PX = 16.0
_NAMED: dict[str, RGB | None] = {
    "white": WHITE, "black": BLACK, "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "gray": (128, 128, 128), "grey": (128, 128, 128), "silver": (192, 192, 192),
    "whitesmoke": (245, 245, 245), "snow": (255, 250, 250), "ivory": (255, 255, 240), "ghostwhite": (248, 248, 255),
    "floralwhite": (255, 250, 240), "mintcream": (245, 255, 250), "azure": (240, 255, 255),
    "aliceblue": (240, 248, 255), "seashell": (255, 245, 238), "linen": (250, 240, 230),
    "honeydew": (240, 255, 240), "lavenderblush": (255, 240, 245), "oldlace": (253, 245, 230),
    "navy": (0, 0, 128), "maroon": (128, 0, 0), "purple": (128, 0, 128), "teal": (0, 128, 128),
    "olive": (128, 128, 0), "orange": (255, 165, 0), "darkgray": (169, 169, 169), "darkgrey": (169, 169, 169),
    "lightgray": (211, 211, 211), "lightgrey": (211, 211, 211), "gainsboro": (220, 220, 220),
    "dimgray": (105, 105, 105), "dimgrey": (105, 105, 105), "transparent": None,
}
_KEYWORD_PX = {"xx-small": 9.0, "x-small": 10.0, "small": 13.0, "medium": 16.0, "large": 18.0, "x-large": 24.0,
               "xx-large": 32.0, "xxx-large": 48.0}
_FONT_SIZE_ATTR = {"1": 10.0, "2": 13.0, "3": 16.0, "4": 18.0, "5": 24.0, "6": 32.0, "7": 48.0}
_LENGTH = re.compile(r"^(-?\d*\.?\d+)\s*(px|pt|em|rem|%|ex|ch|pc|mm|cm|in|vw|vh)?$")


def _declarations(style: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for decl in style.split(";"):
        name, sep, value = decl.partition(":")
        if sep:
            out[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return out


def _length_px(value: str, font_px: float) -> float | None:
    """A CSS length in px (None when not a plain length)."""
    m = _LENGTH.match(value.strip())
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2) or "px"
    factors = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0, "em": font_px,
               "rem": DEFAULT_PX, "%": font_px / 100, "ex": font_px / 2, "ch": font_px / 2, "vw": 10.0, "vh": 8.0}
    if unit in ("px", "pt", "pc", "mm", "cm", "in", "vw", "vh") and n == 0:
        return 0.0
    return n * factors[unit]


def _alpha(token: str | None) -> float:
    if token is None:
        return 1.0
    token = token.strip()
    try:
        return max(0.0, min(1.0, float(token[:-1]) / 100 if token.endswith("%") else float(token)))
    except ValueError:
        return 1.0


def _channel(token: str) -> int:
    token = token.strip()
    value = float(token[:-1]) * 2.55 if token.endswith("%") else float(token)
    return max(0, min(255, round(value)))


def parse_rgba(value: str | None) -> RGBA | None:
    """#rgb(a), #rrggbb(aa), rgb()/rgba(), hsl()/hsla() (comma or space syntax), a colour name, `transparent`;
    None when unknown (the inherited colour stays)."""
    if not value:
        return None
    v = value.strip().lower()
    m = re.search(r"(rgba?|hsla?)\(\s*([^)]*)\)", v)
    if m:
        parts = [p for p in re.split(r"[\s,/]+", m.group(2).strip()) if p]
        if len(parts) < 3:
            return None
        try:
            alpha = _alpha(parts[3] if len(parts) > 3 else None)
            if m.group(1).startswith("rgb"):
                return _channel(parts[0]), _channel(parts[1]), _channel(parts[2]), alpha
            hue = float(parts[0].removesuffix("deg")) / 360
            sat, light = (float(p.rstrip("%")) / 100 for p in parts[1:3])
            r, g, b = colorsys.hls_to_rgb(hue % 1.0, max(0.0, min(1.0, light)), max(0.0, min(1.0, sat)))
            return round(r * 255), round(g * 255), round(b * 255), alpha
        except ValueError:
            return None
    for token in v.split():  # `background: #fff url(...) no-repeat`: the colour is one of the tokens
        if token in _NAMED:
            rgb = _NAMED[token]
            return (0, 0, 0, 0.0) if rgb is None else (*rgb, 1.0)
        hm = re.fullmatch(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})", token)
        if hm:
            h = hm.group(1)
            if len(h) in (3, 4):
                h = "".join(c * 2 for c in h)
            alpha = int(h[6:8], 16) / 255 if len(h) == 8 else 1.0
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), alpha
    return None


def parse_color(value: str | None) -> RGB | None:
    """An opaque colour, for callers that ignore transparency (None when unknown or fully transparent)."""
    rgba = parse_rgba(value)
    return None if rgba is None or rgba[3] == 0 else rgba[:3]


def _luminance(c: RGB) -> float:
    def channel(x: int) -> float:
        s = x / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(x) for x in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _blend(fg: RGBA, bg: RGB) -> RGB:
    r, g, b, a = fg
    return (round(r * a + bg[0] * (1 - a)), round(g * a + bg[1] * (1 - a)), round(b * a + bg[2] * (1 - a)))


@dataclass(frozen=True)
class Style:
    """The computed style that decides visibility. font_px, fg and visible are inherited; bg shows through."""

    tag: str = ""
    font_px: float = DEFAULT_PX
    fg: RGBA = (0, 0, 0, 1.0)
    bg: RGB = WHITE
    visible: bool = True  # `visibility`: inherited, a child may set it back to visible
    removed: str | None = None  # why the whole subtree is hidden (display:none, ...); children cannot undo it

    def hidden_reason(self) -> str | None:
        if self.removed:
            return self.removed
        if not self.visible:
            return "visibility:hidden"
        if self.font_px < MIN_FONT_PX:
            return f"font size {self.font_px:.2g}px"
        if self.fg[3] < MIN_ALPHA:
            return "transparent text"
        if contrast(_blend(self.fg, self.bg), self.bg) < MIN_CONTRAST:
            return "text in the background colour"
        return None


def _removal(decls: dict[str, str], font_px: float) -> str | None:
    if decls.get("display", "").startswith("none"):
        return "display:none"
    if "opacity" in decls and _alpha(decls["opacity"]) < MIN_ALPHA:
        return "opacity:0"
    for prop in ("max-height", "max-width"):
        if prop in decls and _length_px(decls[prop], font_px) == 0:
            return f"{prop}:0"
    overflow_hidden = any(decls.get(p, "").startswith(("hidden", "clip")) for p in ("overflow", "overflow-y",
                                                                                     "overflow-x"))
    for prop in ("height", "width"):
        if overflow_hidden and prop in decls and (_length_px(decls[prop], font_px) or 0) <= 1:
            return f"{prop}:0 with overflow:hidden"
    positioned = decls.get("position", "") in ("absolute", "fixed", "relative")
    for prop in ("left", "top", "right", "margin-left", "margin-top", "text-indent"):
        px = _length_px(decls.get(prop, ""), font_px)
        if px is not None and px <= OFFSCREEN_PX and (positioned or prop.startswith(("margin", "text-indent"))):
            return f"off-screen ({prop}:{decls[prop]})"
    clip = decls.get("clip", "") + " " + decls.get("clip-path", "")
    if re.search(r"rect\(\s*0\w*[\s,]+0\w*[\s,]+0\w*[\s,]+0", clip) or re.search(r"inset\(\s*50%", clip):
        return "clipped away"
    if re.search(r"scale\(\s*0(\.0*)?\s*[,)]", decls.get("transform", "")):
        return "transform:scale(0)"
    return None


def compute(parent: Style, tag: str, attrs: list[tuple[str, str | None]]) -> Style:
    """The child's computed style: own values win over inherited ones."""
    a = {k.lower(): (v or "") for k, v in attrs}
    style = replace(parent, tag=tag)
    if "hidden" in a:
        style = replace(style, removed=style.removed or "hidden attribute")
    if tag == "font" and a.get("size", "").strip() in _FONT_SIZE_ATTR:
        style = replace(style, font_px=_FONT_SIZE_ATTR[a["size"].strip()])
    if "color" in a and (c := parse_rgba(a["color"])) is not None:
        style = replace(style, fg=c)
    if "bgcolor" in a and (c := parse_rgba(a["bgcolor"])) is not None and c[3] > 0:
        style = replace(style, bg=_blend(c, style.bg))
    decls = _declarations(a.get("style", ""))
    if not decls:
        return style
    size = decls.get("font-size")
    if size is not None:
        px = _KEYWORD_PX.get(size)
        if px is None and size in ("smaller", "larger"):
            px = parent.font_px * (0.83 if size == "smaller" else 1.2)
        if px is None:
            px = _length_px(size, parent.font_px)
        if px is not None:
            style = replace(style, font_px=max(px, 0.0))
    if "font" in decls:  # shorthand `font: 0/0 a` or `font: 28pt Arial`
        for token in decls["font"].split():
            px = _length_px(token.split("/")[0], parent.font_px)
            if px is not None:
                style = replace(style, font_px=max(px, 0.0))
                break
    if "color" in decls and (c := parse_rgba(decls["color"])) is not None:
        style = replace(style, fg=c)
    for prop in ("background-color", "background"):
        if prop in decls and (c := parse_rgba(decls[prop])) is not None and c[3] > 0:
            style = replace(style, bg=_blend(c, style.bg))
            break
    vis = decls.get("visibility")
    if vis in ("hidden", "collapse"):
        style = replace(style, visible=False)
    elif vis == "visible":
        style = replace(style, visible=True)
    removed = _removal(decls, style.font_px)
    if removed and not style.removed:
        style = replace(style, removed=removed)
    return style


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []
        self.skip_stack: list[str] = []
        self.styles: list[Style] = [Style()]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID and (self.skip_stack or tag in SKIP):
            self.skip_stack.append(tag)
            return
        if self.skip_stack:
            return
        style = compute(self.styles[-1], tag, attrs)
        if tag not in VOID:
            self.styles.append(style)
        if tag in BLOCK:
            self.parts.append("\n")
        elif tag == "td":
            self.parts.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and style.removed is None:
                self.parts.append(f"[image: {alt}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_stack:
            return
        if tag in BLOCK:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and compute(self.styles[-1], tag, attrs).removed is None:
                self.parts.append(f"[image: {alt}]")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_stack:
            if tag in self.skip_stack:
                while self.skip_stack and self.skip_stack.pop() != tag:
                    pass
            return
        if any(s.tag == tag for s in self.styles[1:]):
            while len(self.styles) > 1 and self.styles.pop().tag != tag:
                pass
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_stack:
            return
        if self.styles[-1].hidden_reason() is None:
            self.parts.append(data)
        elif data.strip():
            self.hidden.append(data.strip())


def _tidy(text: str) -> str:
    text = text.replace("\xa0", " ")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_split(html: str) -> tuple[str, str]:
    """(text a reader sees, text hidden from them) of an HTML body."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - malformed HTML must still give us something readable
        return _tidy(re.sub(r"<[^>]*>", " ", html)), ""
    return _tidy("".join(parser.parts)), _tidy(" ".join(parser.hidden))


def html_to_text(html: str) -> str:
    return html_split(html)[0]
