"""What notebooks show: a servable and a search result render as tables (_repr_html_)."""

import html


def _cell(value):
    return "<td>%s</td>" % html.escape("" if value is None else str(value))


def _creators(manifest):
    return "; ".join(c.get("name", "") + (" (ORCID %s)" % c["orcid"] if c.get("orcid") else "")
                     for c in manifest.get("creators", []))


def _tensors(tensors):
    return "; ".join("%s %s %s" % (t["name"], t["datatype"], t["shape"]) for t in tensors)


class Servable(dict):
    """A servable or dataset as `Client.describe` returns it: the API's object (a dict), with
    its latest version's object under "latest" when it has one."""

    def _repr_html_(self):
        latest = self.get("latest") or {}
        manifest = latest.get("manifest", {})
        signature = manifest.get("signature", {})
        rows = [("name", "%s/%s" % (self.get("tenant"), self.get("name"))),
                ("kind", self.get("kind")), ("visibility", self.get("visibility")),
                ("title", manifest.get("title")), ("creators", _creators(manifest)),
                ("year", manifest.get("year")), ("licence", manifest.get("license")),
                ("backend", manifest.get("backend")), ("task", manifest.get("task")),
                ("inputs", _tensors(signature.get("inputs", []))),
                ("outputs", _tensors(signature.get("outputs", []))),
                ("versions", ", ".join(str(v["version"]) for v in self.get("versions", []))),
                ("aliases", ", ".join("%s -> %s" % kv for kv in self.get("aliases", {}).items()))]
        body = "".join("<tr><th style='text-align:left'>%s</th>%s</tr>" % (html.escape(k), _cell(v))
                       for k, v in rows if v not in (None, ""))
        return "<table>%s</table>" % body


class SearchResult(list):
    """The items of one page of a list or search, with `total`, `page` and `per_page`."""

    def __init__(self, answer):
        super().__init__(answer.get("items", []))
        self.total = answer.get("total", len(self))
        self.page = answer.get("page", 1)
        self.per_page = answer.get("per_page", len(self))

    def _repr_html_(self):
        head = "".join("<th>%s</th>" % h for h in
                       ("name", "kind", "title", "creators", "task", "latest version"))
        rows = []
        for item in self:
            rows.append("<tr>%s</tr>" % "".join(_cell(v) for v in (
                "%s/%s" % (item.get("tenant"), item.get("name")), item.get("kind"),
                item.get("title"), "; ".join(item.get("creators") or []), item.get("task"),
                item.get("latest_version"))))
        return "<table><tr>%s</tr>%s</table><p>%d of %d</p>" % (
            head, "".join(rows), len(self), self.total)
