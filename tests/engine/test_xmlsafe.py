"""Tests for hardened XML parsing of uploaded BPMN/DMN files."""

from __future__ import annotations

import time

import pytest

from engine.errors import DefinitionError, Problem
from engine.xmlsafe import MAX_XML_BYTES, parse_xml

VALID_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs">
  <bpmn:process id="proteccion" isExecutable="true">
    <bpmn:startEvent id="inicio"/>
  </bpmn:process>
</bpmn:definitions>
"""


def refusal(content: bytes, **kwargs: int) -> Problem:
    """Parse content expecting a refusal and return its single problem."""
    with pytest.raises(DefinitionError) as caught:
        parse_xml(content, filename="upload.bpmn", **kwargs)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.file == "upload.bpmn"
    return problem


def test_valid_bpmn_parses() -> None:
    tree = parse_xml(VALID_BPMN, filename="ok.bpmn")
    assert tree.getroot().get("id") == "defs"
    assert tree.getroot().find("{*}process").get("id") == "proteccion"  # type: ignore[union-attr]


def test_utf8_bom_is_accepted() -> None:
    tree = parse_xml(b"\xef\xbb\xbf" + VALID_BPMN, filename="bom.bpmn")
    assert tree.getroot().get("id") == "defs"


def test_external_parameter_entity_on_dev_zero_is_refused_quickly() -> None:
    content = b"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY % zero SYSTEM "file:///dev/zero"> %zero;]>
<definitions/>"""
    started = time.monotonic()
    problem = refusal(content)
    assert time.monotonic() - started < 1.0
    assert problem.message == "refused: the file declares a DOCTYPE (DTDs and entities are not allowed)"
    assert problem.line == 2


def test_billion_laughs_is_refused() -> None:
    entities = "\n".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    content = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol0 "lol">
{entities}]>
<lolz>&lol9;</lolz>""".encode()
    problem = refusal(content)
    assert "DOCTYPE" in problem.message
    assert "not allowed" in problem.message


def test_external_general_entity_is_refused_without_reading_the_file() -> None:
    content = b"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<definitions>&xxe;</definitions>"""
    with pytest.raises(DefinitionError) as caught:
        parse_xml(content, filename="upload.bpmn")
    assert "DTDs and entities are not allowed" in str(caught.value)
    assert "root:" not in str(caught.value)


def test_entity_declaration_without_doctype_is_refused() -> None:
    problem = refusal(b'<definitions>\n<!ENTITY x "y"></definitions>')
    assert problem.message == "refused: the file declares an ENTITY (DTDs and entities are not allowed)"
    assert problem.line == 2


def test_lowercase_doctype_is_refused() -> None:
    problem = refusal(b"<!doctype definitions><definitions/>")
    assert "declares a DOCTYPE" in problem.message


def test_utf16_document_with_doctype_is_refused_as_not_utf8() -> None:
    content = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>'
    problem = refusal(content.encode("utf-16"))
    assert problem.message.startswith("refused: the file is not UTF-8 text")


def test_utf16_without_bom_is_refused_as_not_utf8() -> None:
    # Valid UTF-8 byte-wise (ASCII plus NULs), and libxml2 would auto-detect it as UTF-16.
    content = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>'
    problem = refusal(content.encode("utf-16-le"))
    assert "not UTF-8 text" in problem.message
    assert "NUL" in problem.message


def test_latin1_bytes_are_refused_as_not_utf8() -> None:
    problem = refusal('<definitions name="Violència"/>'.encode("latin-1"))
    assert "not UTF-8 text" in problem.message


def test_declared_non_utf8_encoding_is_refused() -> None:
    problem = refusal(b'<?xml version="1.0" encoding="ISO-8859-1"?><definitions/>')
    assert problem.message == (
        'refused: the file declares encoding "ISO-8859-1"; BPMN and DMN files must be UTF-8'
    )


def test_oversize_file_is_refused_with_the_size_cap() -> None:
    problem = refusal(VALID_BPMN + b" " * 200, max_bytes=len(VALID_BPMN))
    assert "larger than the" in problem.message
    assert f"{len(VALID_BPMN)} bytes limit" in problem.message


def test_default_cap_is_five_megabytes() -> None:
    content = b"<definitions>" + b" " * MAX_XML_BYTES + b"</definitions>"
    problem = refusal(content)
    assert "larger than the 5.0 MB limit" in problem.message


def test_malformed_xml_reports_lxml_message_and_line() -> None:
    problem = refusal(b"<definitions>\n  <process>\n</definitions>")
    assert problem.line == 3
    assert problem.message.startswith("malformed XML: Opening and ending tag mismatch")
    assert "(line 3, column" in problem.message


def test_undefined_entity_reference_is_malformed() -> None:
    problem = refusal(b"<definitions>&foo;</definitions>")
    assert "Entity 'foo' not defined" in problem.message
    assert problem.line == 1


def test_text_that_is_not_xml_is_refused() -> None:
    problem = refusal(b"hello")
    assert problem.message.startswith("refused: the file is not XML")


def test_empty_file_is_refused() -> None:
    problem = refusal(b"  \n")
    assert problem.message == "refused: the file is empty"
