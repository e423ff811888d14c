"""The paths a manifest lists under `files:`, read without a YAML library.

The standard library has no YAML, and the client packs what the manifest lists as the CLI does.
This reads the subset of YAML that `files:` is written in: a block or flow sequence whose items
are paths (plain or quoted scalars) or mappings with a `path` key (flow `{path: a, sha256: ..}`
or block `path: a` with `sha256: ..` below), and a manifest that is one JSON document. Anything
else raises ValueError naming the line; a path read wrongly is refused by the hub, which parses
the manifest itself and names the file.
"""

import json
import re

_TOP_LEVEL_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s#'"\-\[\]{},][^:]*?):(\s|$)""")


def listed_paths(text):
    """The paths of the top-level `files` list of manifest `text`, in order."""
    if text.lstrip().startswith("{"):
        try:
            return [_path_of(item) for item in json.loads(text).get("files", [])]
        except (ValueError, AttributeError):
            pass  # YAML flow style that is not JSON: read below
    value = _top_level_value(text, "files")
    if value is None or not value.strip():
        return []
    if value.lstrip().startswith("["):
        items, _ = _flow(value, _skip(value, 0))
        return [_path_of(item) for item in items]
    return [_path_of(item) for item in _block_items(value)]


def _top_level_value(text, wanted):
    """The text of the top-level key `wanted`'s value (its line's rest and the indented lines
    below), comments removed; None without that key."""
    lines, inside = [], False
    for line in text.splitlines():
        line = _uncomment(line)
        match = _TOP_LEVEL_KEY.match(line)
        if match:
            inside = match.group(1).strip("'\"") == wanted
            if inside:
                lines.append(line[match.end(1) + 1:])
        elif inside:
            lines.append(line)
    return "\n".join(lines) if lines else None


def _uncomment(line):
    """`line` without a trailing comment (a # after a space, outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote and not (quote == '"' and line[i - 1] == "\\"):
                quote = None
        elif c in "'\"" and (i == 0 or line[i - 1] in " \t[{,:"):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line


def _block_items(value):
    """The items of a block sequence: each '- ' entry with its more indented lines."""
    items, current, indent = [], None, None
    for line in value.splitlines():
        if not line.strip():
            continue
        stripped = line.lstrip()
        here = len(line) - len(stripped)
        if stripped.startswith("-") and (indent is None or here <= indent):
            indent = here
            current = [stripped[1:].strip()]
            items.append(current)
        elif current is not None:
            current.append(stripped)
        else:
            raise ValueError("orrery.yaml: files: expected a list, got %r" % line.strip())
    return [_block_item(lines) for lines in items]


def _block_item(lines):
    text = " ".join(lines).strip()
    if text[:1] in "[{":
        return _flow(text, 0)[0]
    key = re.match(r"""("path"|'path'|path):\s""", lines[0] + " ")
    if key:  # a block mapping: `path: a` on the dash's line, other keys below
        return {"path": _scalar(lines[0][key.end():].strip())}
    for line in lines[1:]:
        key = re.match(r"""("path"|'path'|path):\s""", line + " ")
        if key:
            return {"path": _scalar(line[key.end():].strip())}
    return _scalar(text)


def _flow(s, i):
    """(value, next index) of the flow value at s[i]."""
    if s[i] in "[{":
        closing, out = ("]", []) if s[i] == "[" else ("}", {})
        i = _skip(s, i + 1)
        while s[i] != closing:
            if closing == "]":
                item, i = _flow(s, i)
                out.append(item)
            else:
                key, i = _flow(s, i)
                i = _skip(s, i)
                if s[i] != ":":
                    raise ValueError("orrery.yaml: files: expected ':' after %r" % key)
                value, i = _flow(s, _skip(s, i + 1))
                out[key] = value
            i = _skip(s, i)
            if s[i] == ",":
                i = _skip(s, i + 1)
            elif s[i] != closing:
                raise ValueError("orrery.yaml: files: expected ',' or '%s' at %r"
                                 % (closing, s[i:i + 20]))
        return out, i + 1
    if s[i] in "'\"":
        end = _closing_quote(s, i)
        return _scalar(s[i:end + 1]), end + 1
    end = i  # a plain scalar: up to a flow indicator, or ':' that ends a key
    while end < len(s) and s[end] not in ",]}\n" and not (
            s[end] == ":" and s[end + 1:end + 2] in ("", " ", "\t", "\n", ",", "]", "}")):
        end += 1
    return _scalar(s[i:end].strip()), end


def _closing_quote(s, start):
    """The index of the quote that closes the one at s[start] ('' and \\" escape)."""
    quote, i = s[start], start + 1
    while i < len(s):
        if quote == '"' and s[i] == "\\":
            i += 2
        elif s[i] == quote and quote == "'" and s[i + 1:i + 2] == "'":
            i += 2
        elif s[i] == quote:
            return i
        else:
            i += 1
    raise ValueError("orrery.yaml: files: a quote is not closed")


def _skip(s, i):
    while i < len(s) and s[i] in " \t\n":
        i += 1
    if i >= len(s):
        raise ValueError("orrery.yaml: files: the list is not closed")
    return i


def _scalar(text):
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return text


def _path_of(item):
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("path"), str):
        return item["path"]
    raise ValueError("orrery.yaml: files: an item is neither a path nor has one: %r" % (item,))
