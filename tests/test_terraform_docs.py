"""Every Terraform module (terraform/modules/* and the stack, terraform/coachflow) has a README.md whose
Inputs and Outputs tables list exactly the module's variables and outputs: same names, descriptions,
types and defaults (or "required").

The variables and outputs are read from the module's *.tf files by a small parser made for `terraform
fmt`ed files: it understands strings (escapes, interpolations), comments, heredocs and multi-line
expressions such as ``type = object({...})``, and refuses what it does not understand rather than
guessing. On a mismatch the assertion message holds the expected table, ready to paste.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.stack import ROOT

STACK = ROOT / "terraform" / "coachflow"
MODULES = sorted({path.parent for path in (ROOT / "terraform" / "modules").glob("*/*.tf")}) + [STACK]

INPUTS_HEADER = ["Name", "Description", "Type", "Default"]
OUTPUTS_HEADER = ["Name", "Description"]
REQUIRED = "required"


# --- reading the module ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A top-level ``variable`` or ``output`` block: its label and its top-level attributes."""

    kind: str
    name: str
    attributes: dict[str, str]  # attribute -> expression on one line, comments removed


@dataclass(frozen=True)
class Row:
    name: str
    description: str
    type: str = ""
    default: str = ""


def _lex(text: str) -> tuple[str, str]:
    """Two copies of ``text``, character for character: ``clean`` has the comments blanked out; ``mask``
    also has the inside of every string literal and heredoc replaced by ``x`` (quotes and heredoc
    markers stay), so that brackets, ``=`` and line ends can be found in it without looking into text."""
    clean, mask = list(text), list(text)

    def blank(copy: list[str], start: int, end: int, char: str, newlines: bool = False) -> None:
        for k in range(start, end):
            if newlines or copy[k] != "\n":
                copy[k] = char

    i, n = 0, len(text)
    while i < n:
        if text[i] == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(clean, i, end, " ")
            blank(mask, i, end, " ")
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            assert end >= 0, "unterminated /* comment"
            blank(clean, i, end + 2, " ")
            blank(mask, i, end + 2, " ")
            i = end + 2
        elif text[i] == '"':
            end = _string_end(text, i)
            blank(mask, i + 1, end - 1, "x")
            i = end
        elif heredoc := re.compile(r"<<-?([A-Za-z_][\w-]*)[ \t]*\n").match(text, i):
            close = re.compile(rf"^[ \t]*{re.escape(heredoc.group(1))}[ \t]*$", re.M).search(text, heredoc.end())
            assert close, f"unterminated heredoc {heredoc.group(1)}"
            blank(mask, heredoc.end() - 1, close.end(), "x", newlines=True)  # its newlines too: a heredoc is one token
            i = close.end()
        else:
            i += 1
    return "".join(clean), "".join(mask)


def _string_end(text: str, start: int) -> int:
    """The index just after the string literal opening at ``start`` (interpolations may nest strings)."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        elif text.startswith(("$${", "%%{"), i):
            i += 3
        elif text.startswith(("${", "%{"), i):
            i = _template_end(text, i + 2)
        else:
            assert c != "\n", f"newline inside a string literal at offset {start}"
            i += 1
    raise AssertionError(f"unterminated string literal at offset {start}")


def _template_end(text: str, i: int) -> int:
    """The index just after the ``}`` closing an interpolation whose body starts at ``i``."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    raise AssertionError("unterminated interpolation")


def _one_line(clean: str, mask: str) -> str:
    """A (possibly multi-line) expression on one line: whitespace outside strings collapsed, and the lines
    of an object type or a multi-line collection (one element per line, as ``terraform fmt`` writes
    them) joined with ", "."""
    lines, line = [], []
    for char, masked in zip(clean, mask):
        if masked == "\n":
            lines.append("".join(line).strip())
            line = []
        elif masked.isspace():
            if line and line[-1] != " ":
                line.append(" ")
        else:
            line.append(char)
    lines.append("".join(line).strip())
    joined = ""
    for text in filter(None, lines):
        if joined:
            joined += " " if joined.endswith(("(", "[", "{", ",")) or text.startswith((")", "]", "}")) else ", "
        joined += text
    return re.sub(r",\s*([)\]}])", r" \1", joined)  # no trailing comma before a closing bracket


def _closing(mask: str, i: int, end: int) -> int:
    """The end of the expression starting at ``i``: the first line end at bracket depth 0 (or ``end``)."""
    depth = 0
    while i < end:
        if mask[i] in "([{":
            depth += 1
        elif mask[i] in ")]}":
            depth -= 1
            assert depth >= 0, f"unbalanced {mask[i]!r} at offset {i}"
        elif mask[i] == "\n" and depth == 0:
            return i
        i += 1
    assert depth == 0, "unbalanced brackets"
    return end


def _block_end(mask: str, body: int) -> int:
    """The index of the ``}`` closing the block whose body starts at ``body``."""
    depth = 0
    for i in range(body, len(mask)):
        if mask[i] in "([{":
            depth += 1
        elif mask[i] in ")]}":
            if depth == 0:
                assert mask[i] == "}", f"unbalanced {mask[i]!r} at offset {i}"
                return i
            depth -= 1
    raise AssertionError("unterminated block")


BLOCK_HEADER = re.compile(r'([A-Za-z_][\w-]*)((?:[ \t]+(?:"x*"|[A-Za-z_][\w-]*))*)[ \t]*\{')
ATTRIBUTE = re.compile(r"[ \t]*([A-Za-z_][\w-]*)[ \t]*=(?!=)")
NESTED_BLOCK = re.compile(r"[ \t]*[A-Za-z_][\w-]*(?:[ \t]+\"x*\")*[ \t]*\{")


def parse_blocks(text: str) -> list[Block]:
    """The top-level variable and output blocks of one .tf file, in order."""
    clean, mask = _lex(text)
    blocks, i = [], 0
    while i < len(mask):
        line_end = mask.find("\n", i)
        line_end = len(mask) if line_end < 0 else line_end
        header = BLOCK_HEADER.match(mask, i, line_end)
        if not header:
            assert not mask[i:line_end].strip(), f"unexpected top-level text: {text[i:line_end]!r}"
            i = line_end + 1
            continue
        end = _block_end(mask, header.end())
        if header.group(1) in ("variable", "output"):
            labels = re.findall(r'"([^"]*)"', text[header.start(2) : header.end(2)])
            assert len(labels) == 1, f"a {header.group(1)} block has one label: {text[header.start() : header.end()]!r}"
            blocks.append(Block(header.group(1), labels[0], _attributes(clean, mask, header.end(), end)))
        i = end + 1
    return blocks


def _attributes(clean: str, mask: str, i: int, end: int) -> dict[str, str]:
    """The attributes of a block body (``mask[i:end]``), nested blocks skipped."""
    attributes = {}
    while i < end:
        line_end = mask.find("\n", i, end)
        line_end = end if line_end < 0 else line_end
        if attribute := ATTRIBUTE.match(mask, i, line_end):
            stop = _closing(mask, attribute.end(), end)
            assert attribute.group(1) not in attributes, f"{attribute.group(1)} set twice"
            attributes[attribute.group(1)] = _one_line(clean[attribute.end() : stop], mask[attribute.end() : stop])
            i = stop + 1
        elif nested := NESTED_BLOCK.match(mask, i, line_end):  # validation {...}, lifecycle {...}
            i = _block_end(mask, nested.end()) + 1
        else:
            assert not mask[i:line_end].strip() or mask[i:line_end].strip() == "}", f"unexpected text: {clean[i:line_end]!r}"
            i = line_end + 1
    return attributes


def string_literal(expression: str) -> str:
    """The value of a plain HCL string literal (no interpolation)."""
    assert re.fullmatch(r'"([^"\\]|\\.)*"', expression), f"not a single string literal: {expression}"
    assert not re.search(r"(?<![$%])[$%]\{", expression.replace("$${", "").replace("%%{", "")), f"interpolation in {expression}"
    escapes = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code[1:], 16)) if code[0] in "uU" else escapes[code]

    body = re.sub(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", unescape, expression[1:-1])
    return body.replace("$${", "${").replace("%%{", "%{")


def module_interface(module: Path) -> tuple[list[Row], list[Row]]:
    """The module's inputs and outputs, in declaration order (variables.tf, outputs.tf, then the rest)."""
    files = sorted(module.glob("*.tf"), key=lambda p: (p.name not in ("variables.tf", "outputs.tf"), p.name))
    inputs, outputs = [], []
    for path in files:
        for block in parse_blocks(path.read_text()):
            where = f"{path.relative_to(ROOT)}: {block.kind} {block.name!r}"
            assert "description" in block.attributes, f"{where} has no description"
            description = string_literal(block.attributes["description"])
            if block.kind == "output":
                outputs.append(Row(block.name, description))
            else:
                assert "type" in block.attributes, f"{where} has no type"
                inputs.append(Row(block.name, description, block.attributes["type"], block.attributes.get("default", REQUIRED)))
    return inputs, outputs


# --- reading and writing the README ----------------------------------------------------------------


def _md_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")


def _md_code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def markdown_table(rows: list[Row], inputs: bool) -> str:
    header = INPUTS_HEADER if inputs else OUTPUTS_HEADER
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [_md_code(row.name), _md_text(row.description)]
        if inputs:
            cells += [_md_code(row.type), REQUIRED if row.default == REQUIRED else _md_code(row.default)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cells(line: str) -> list[str]:
    line = line.strip()
    assert line.startswith("|") and line.endswith("|"), f"not a table row: {line}"
    cells = re.split(r"(?<!\\)\|", line[1:-1])
    return [cell.strip() for cell in cells]


def _from_md_text(cell: str) -> str:
    return re.sub(r"\\(.)", r"\1", cell)


def _from_md_code(cell: str) -> str:
    assert re.fullmatch(r"`[^`]+`", cell), f"expected `code`, found {cell!r}"
    return cell[1:-1].replace("\\|", "|")


def readme_table(readme: str, heading: str) -> tuple[list[str], list[list[str]]] | None:
    """The header and data rows of the first table after ``## <heading>``, or None."""
    lines = readme.splitlines()
    try:
        i = lines.index(f"## {heading}") + 1
    except ValueError:
        return None
    while i < len(lines) and not lines[i].startswith(("|", "#")):
        i += 1
    table = []
    while i < len(lines) and lines[i].startswith("|"):
        table.append(_cells(lines[i]))
        i += 1
    if len(table) < 2:
        return None
    return table[0], table[2:]


def readme_rows(readme: str, inputs: bool) -> list[Row] | str:
    """The README's rows, or why they could not be read."""
    heading, header = ("Inputs", INPUTS_HEADER) if inputs else ("Outputs", OUTPUTS_HEADER)
    table = readme_table(readme, heading)
    if table is None:
        return f"no table under a '## {heading}' heading"
    if table[0] != header:
        return f"the {heading} table's columns are {table[0]}, expected {header}"
    rows = []
    for cells in table[1]:
        if len(cells) != len(header):
            return f"a row of {len(cells)} cells, expected {len(header)}: {cells}"
        try:
            name, description = _from_md_code(cells[0]), _from_md_text(cells[1])
            if not inputs:
                rows.append(Row(name, description))
                continue
            default = REQUIRED if cells[3] == REQUIRED else _from_md_code(cells[3])
            rows.append(Row(name, description, _from_md_code(cells[2]), default))
        except AssertionError as error:
            return str(error)
    return rows


def differences(expected: list[Row], documented: list[Row]) -> list[str]:
    """What the documented rows get wrong, one line each (empty when they match)."""
    problems = []
    names = [row.name for row in documented]
    problems += [f"{name!r} is listed more than once" for name in sorted({n for n in names if names.count(n) > 1})]
    want, have = {row.name: row for row in expected}, {row.name: row for row in documented}
    problems += [f"{name!r} is not documented" for name in want if name not in have]
    problems += [f"{name!r} is documented but does not exist" for name in have if name not in want]
    for name in want.keys() & have.keys():
        for field in ("description", "type", "default"):
            expected_value, documented_value = getattr(want[name], field), getattr(have[name], field)
            if expected_value != documented_value:
                problems.append(f"{name!r}: {field} is {documented_value!r}, expected {expected_value!r}")
    return problems


def check(module: Path, inputs: bool) -> str | None:
    """None when the module's README documents its inputs (or outputs) exactly; otherwise the report."""
    readme_path = module / "README.md"
    expected = module_interface(module)[0 if inputs else 1]
    table = markdown_table(expected, inputs)
    where = f"{readme_path.relative_to(ROOT)} ({'Inputs' if inputs else 'Outputs'})"
    if not readme_path.exists():
        return f"{where}: no README.md. Expected table:\n\n{table}\n"
    documented = readme_rows(readme_path.read_text(), inputs)
    problems = [documented] if isinstance(documented, str) else differences(expected, documented)
    if not problems:
        return None
    return (
        f"{where}:\n"
        + "\n".join(f"  - {p}" for p in problems)
        + f"\n\nExpected table (paste it into the README, or run python -m tests.test_terraform_docs):\n\n{table}\n"
    )


# --- the tests ---------------------------------------------------------------------------------------


def test_every_module_is_checked():
    names = {str(module.relative_to(ROOT / "terraform")) for module in MODULES}
    assert names >= {"modules/queue", "modules/lambda_function", "modules/state_machine", "modules/schedule", "coachflow"}


@pytest.mark.parametrize("inputs", [True, False], ids=["inputs", "outputs"])
@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(ROOT / "terraform")))
def test_readme_documents_the_module_interface(module: Path, inputs: bool):
    assert module_interface(module)[0 if inputs else 1], f"{module}: the parser found nothing"
    report = check(module, inputs)
    if report is not None:
        pytest.fail(report, pytrace=False)


# The parser and the comparison themselves, on a module written for the purpose.

SAMPLE = r"""
# A comment with "quotes" and { a brace
variable "plain" {
  description = "Has \"escapes\", a $${literal} and a | pipe." # trailing comment
  type        = string
}

variable "shaped" {
  description = "A multi-line object with defaults."
  type = map(object({
    schedule = string
    timezone = optional(string, "UTC") # comment inside
    nested   = optional(object({ a = number }), { a = 1 })
  }))
  default = {
    x = { schedule = "rate(1 hour)" }
  }

  validation {
    condition     = alltrue([for k in keys(var.shaped) : can(regex("^[a-z]{1,3}$", k))])
    error_message = "Keys are { short }."
  }
}

locals {
  x = "variable \"fake\" {"
}

output "out" {
  description = "An output."
  value       = "${local.x}-${jsonencode({ a = "}" })}"
}

variable "nothing" {
  description = <<-EOT
    Heredoc text.
  EOT
  type        = number
  default     = 345600 # 4 days
}
"""


def test_the_parser_reads_multi_line_types_defaults_and_strings():
    blocks = parse_blocks(SAMPLE)
    assert [(b.kind, b.name) for b in blocks] == [("variable", "plain"), ("variable", "shaped"), ("output", "out"), ("variable", "nothing")]
    plain, shaped, out, nothing = blocks
    assert string_literal(plain.attributes["description"]) == 'Has "escapes", a ${literal} and a | pipe.'
    assert plain.attributes == {"description": plain.attributes["description"], "type": "string"}
    assert shaped.attributes["type"] == (
        'map(object({ schedule = string, timezone = optional(string, "UTC"), nested = optional(object({ a = number }), { a = 1 }) }))'
    )
    assert shaped.attributes["default"] == '{ x = { schedule = "rate(1 hour)" } }'
    assert "validation" not in shaped.attributes and "condition" not in shaped.attributes
    assert out.attributes["value"] == '"${local.x}-${jsonencode({ a = "}" })}"'
    assert nothing.attributes["default"] == "345600"
    with pytest.raises(AssertionError, match="not a single string literal"):
        string_literal(nothing.attributes["description"])


def test_a_mismatch_is_reported_with_the_table_to_paste():
    module = ROOT / "terraform" / "modules" / "queue"
    inputs, _ = module_interface(module)
    added = Row("undocumented", "A variable nobody documented.", "string", REQUIRED)
    table = markdown_table(inputs, inputs=True)
    assert differences([*inputs, added], _rows(table, inputs=True)) == ["'undocumented' is not documented"]
    changed = [Row(r.name, r.description + " Changed.", r.type, r.default) if r.name == "name" else r for r in inputs]
    assert differences(changed, _rows(table, inputs=True)) == [
        f"'name': description is {inputs[0].description!r}, expected {inputs[0].description + ' Changed.'!r}"
    ]
    # the README exactly as the expected table renders reads back to the same rows
    assert _rows(markdown_table([*inputs, added], inputs=True), inputs=True) == [*inputs, added]


def _rows(table: str, inputs: bool) -> list[Row]:
    rows = readme_rows(f"## {'Inputs' if inputs else 'Outputs'}\n\n{table}\n", inputs)
    assert not isinstance(rows, str), rows
    return rows


def write_tables() -> None:
    """Rewrite every module README's Inputs and Outputs tables from its .tf files."""
    for module in MODULES:
        readme = module / "README.md"
        text = readme.read_text()
        inputs, outputs = module_interface(module)
        for heading, rows, is_inputs in (("Inputs", inputs, True), ("Outputs", outputs, False)):
            pattern = re.compile(rf"(## {heading}\n\n)(\|.*?\n)(?=\n|$)", re.S)
            table = markdown_table(rows, is_inputs).rstrip("\n") + "\n"
            text, found = pattern.subn(lambda m, table=table: m.group(1) + table, text, count=1)
            if not found:
                raise SystemExit(f"{readme}: no '## {heading}' table to rewrite")
        readme.write_text(text)
        print(f"rewrote {readme.relative_to(ROOT)}")


if __name__ == "__main__":
    write_tables()
