"""Hardened XML parsing for uploaded BPMN and DMN files.

Uploaded definitions come from people we only partly trust, so the parser must never
fetch anything, expand entities or read local files. DTDs have no legitimate use in
BPMN/DMN, so any DOCTYPE or ENTITY declaration is refused outright before lxml sees
the bytes: that closes XXE, billion-laughs and external-DTD tricks regardless of how
libxml2 is configured.
"""

from __future__ import annotations

import re
from typing import NoReturn

from lxml import etree

from engine.errors import DefinitionError, Problem

MAX_XML_BYTES = 5 * 1024 * 1024

_UTF8_BOM = b"\xef\xbb\xbf"
# Declared encodings that decode the same bytes exactly like UTF-8 (ASCII is a subset).
_ACCEPTED_DECLARED_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_XML_DECLARATION_ENCODING = re.compile(r"""\A<\?xml\b[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
# lxml appends the position to its messages; we report it once, in our own format.
_LXML_POSITION_SUFFIX = re.compile(r",\s*line \d+, column \d+\s*\Z")


def parse_xml(content: bytes, *, filename: str, max_bytes: int = MAX_XML_BYTES) -> etree._ElementTree:
    """Parse an uploaded BPMN/DMN document, refusing anything unsafe or malformed."""
    if len(content) > max_bytes:
        _refuse(
            filename,
            f"refused: the file is {_human_size(len(content))}, larger than the "
            f"{_human_size(max_bytes)} limit",
        )
    text = _decode_utf8(content, filename)
    if not text.strip():
        _refuse(filename, "refused: the file is empty")
    _refuse_declarations(text, filename)
    _refuse_foreign_encoding(text, filename)
    if not text.lstrip().startswith("<"):
        _refuse(
            filename,
            "refused: the file is not XML (a BPMN or DMN file starts with '<?xml' or '<definitions')",
            line=1,
        )

    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    try:
        tree = etree.fromstring(content, parser).getroottree()
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        message = _LXML_POSITION_SUFFIX.sub("", exc.msg or "unknown error")
        _refuse(filename, f"malformed XML: {message} (line {line}, column {column})", line=line)

    # Belt and braces: the text scan should make this unreachable, but a DOCTYPE that
    # slipped through (some encoding trick we did not foresee) must still be refused.
    doctype: str = tree.docinfo.doctype  # type: ignore[union-attr]  # lxml-stubs 0.5.1 lacks it
    if doctype:
        _refuse(filename, "refused: the file declares a DOCTYPE (DTDs and entities are not allowed)")
    return tree


def _decode_utf8(content: bytes, filename: str) -> str:
    """Decode the upload as UTF-8 (an optional BOM is dropped) or refuse it."""
    body = content[len(_UTF8_BOM) :] if content.startswith(_UTF8_BOM) else content
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        _refuse(
            filename,
            "refused: the file is not UTF-8 text (BPMN and DMN files must be saved as UTF-8)",
            line=line,
        )
    # UTF-16/UTF-32 text without a BOM is valid UTF-8 full of NULs, and libxml2 would
    # happily auto-detect and parse it, hiding a DOCTYPE from our scan. NUL is never
    # legal in XML, so refusing it costs nothing.
    if "\x00" in text:
        _refuse(
            filename,
            "refused: the file is not UTF-8 text (it contains NUL bytes, as UTF-16 files do; "
            "save it as UTF-8)",
            line=text.count("\n", 0, text.index("\x00")) + 1,
        )
    return text


def _refuse_declarations(text: str, filename: str) -> None:
    """Refuse any DOCTYPE or ENTITY declaration, wherever it appears."""
    lowered = text.lower()
    # Checked as plain text, even inside comments or CDATA: a false positive there is
    # harmless, while trusting our own reading of the markup would not be.
    for marker, what in (("<!doctype", "a DOCTYPE"), ("<!entity", "an ENTITY")):
        position = lowered.find(marker)
        if position >= 0:
            _refuse(
                filename,
                f"refused: the file declares {what} (DTDs and entities are not allowed)",
                line=text.count("\n", 0, position) + 1,
            )


def _refuse_foreign_encoding(text: str, filename: str) -> None:
    """Refuse a declaration claiming a non-UTF-8 encoding (lxml would obey it, not us)."""
    match = _XML_DECLARATION_ENCODING.match(text)
    if match and match.group(1).strip().lower() not in _ACCEPTED_DECLARED_ENCODINGS:
        _refuse(
            filename,
            f'refused: the file declares encoding "{match.group(1)}"; BPMN and DMN files must be UTF-8',
            line=1,
        )


def _human_size(size: int) -> str:
    """Render a byte count for a user-facing message."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def _refuse(filename: str, message: str, *, line: int | None = None) -> NoReturn:
    """Raise the DefinitionError the upload form shows to the user."""
    raise DefinitionError([Problem(file=filename, message=message, line=line)])
