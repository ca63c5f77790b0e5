"""The study site's own Sphinx extension: kernels by dotted name, agreement read from JSON.

Every kernel is named by its public dotted path (``minireg.optim.adam.adam``), never by a
file path, so the pages keep working when a kernel's module file moves: ``inspect`` finds
the file and the first line at build time.

Directives
----------
``.. kernel:: DOTTED.NAME``
    The object's docstring through autodoc (equations typeset), then its source,
    highlighted, with the file's real line numbers and a link to the whole file's
    highlighted source (``sphinx.ext.viewcode``).  The docstring, already typeset above,
    is left out of the listing (``:with-docstring:`` keeps it); ``:no-doc:`` leaves out
    the typeset docstring instead.
``.. torch-notes:: NAME [NAME ...]``
    The comments in those objects' source that mention torch, each with its file and
    line: what torch does that is subtle, as the code itself says it.
    ``:whole-module:`` reads the whole file of each object (notes in helpers too),
    ``:owner-match:`` keeps only notes inside functions or classes whose name matches.
``.. fidelity::``
    A table of the measured agreement with torch for some rows of the fidelity battery
    (``:family:`` and/or ``:match:``, a regular expression on the row label), read from
    the JSON file that ``python -m plots fidelity`` writes beside the figure.
``.. package-tour:: PACKAGE``
    A package's docstring, then each module in it: docstring and documented members.

Roles
-----
``:source:`DOTTED.NAME``` -- ``path/to/file.py:LINE``, linked to the highlighted file.
``:kernel:`DOTTED.NAME``` -- the name, linked to the study page that shows its kernel.

A name that does not resolve, a kernel that no study page shows, a module without a
highlighted-source page or a fidelity filter that matches no row is a warning, so the
``-W`` build fails and says which.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import json
import pkgutil
import re
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, SphinxRole

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the repository: docs/_ext/ -> docs/ -> root


# ============================================================================ finding source
class NameError_(LookupError):
    """A dotted name that does not lead to an object."""


def resolve(name: str) -> Any:
    """The object at ``name``: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        modname = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name is not None and modname.startswith(exc.name):
                continue  # this prefix is not a module: try a shorter one
            raise
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise NameError_(f"{name!r}: {obj!r} has no attribute {attr!r}") from None
        return obj
    raise NameError_(f"{name!r}: no importable module in it")


@dataclass
class Source:
    """Where an object's source lives and which of its lines are the docstring."""

    name: str  # as written on the page
    obj: Any
    modname: str  # the module that defines it (after any re-export)
    qualname: str  # "" for a module
    path: Path
    first: int  # 1-based line number of the first line
    lines: list[str]  # the source lines, with their newlines
    docstring: tuple[int, int] | None  # first and last line of the docstring, 1-based

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1

    @property
    def relpath(self) -> str:
        try:
            return self.path.relative_to(ROOT).as_posix()
        except ValueError:
            return self.path.as_posix()

    @property
    def fullname(self) -> str:
        return f"{self.modname}.{self.qualname}" if self.qualname else self.modname


def find_source(name: str) -> Source:
    obj = inspect.unwrap(resolve(name))
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if isinstance(obj, ModuleType):
        modname, qualname = obj.__name__, ""
    else:
        module, qualified = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if not module or not qualified:
            raise NameError_(f"{name!r} is not a function, class, method or module")
        modname, qualname = str(module), str(qualified)
    try:
        lines, first = inspect.getsourcelines(obj)
        path = Path(inspect.getsourcefile(obj) or "")
    except (OSError, TypeError) as exc:
        raise NameError_(f"{name!r}: no source ({exc})") from None
    first = max(first, 1)  # a module's source starts at 0
    return Source(
        name, obj, modname, qualname, path.resolve(), first, lines, _docstring_span(lines, first)
    )


def _docstring_span(lines: list[str], first: int) -> tuple[int, int] | None:
    """The docstring's first and last line number, from the parsed source."""
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return None
    body = tree.body
    if tree.body and isinstance(
        tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    ):
        body = tree.body[0].body
    first_statement = body[0] if body else None
    if (
        isinstance(first_statement, ast.Expr)
        and isinstance(first_statement.value, ast.Constant)
        and isinstance(first_statement.value.value, str)
    ):
        end = first_statement.end_lineno or first_statement.lineno
        return first + first_statement.lineno - 1, first + end - 1
    return None


def torch_comments(source: Source) -> list[tuple[int, str, str, str]]:
    """``(line number, enclosing def or class, code before the comment, comment)`` for
    each comment in ``source`` that mentions torch.  A comment that goes on over the next
    lines (comment-only lines in the same column) is read whole."""
    text = textwrap.dedent("".join(source.lines))
    rows = text.splitlines()
    comments: list[tuple[int, int, str, str]] = []  # row, column, code before, text
    try:
        owners = _enclosing_definitions(ast.parse(text), source.qualname)
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                row, column = token.start
                code = rows[row - 1][:column].strip()
                comments.append((row, column, code, token.string.lstrip("#").strip()))
    except (tokenize.TokenError, SyntaxError):
        return []
    blocks: list[list[tuple[int, int, str, str]]] = []
    for comment in comments:
        last = blocks[-1][-1] if blocks else None
        goes_on = (
            last is not None
            and comment[0] == last[0] + 1
            and (comment[1] == last[1] or (comment[2] and last[2]))  # trailing ones may shift
            and (not comment[2] or not last[3].endswith((".", ":", ";", ")", "!", "?")))
        )
        if goes_on:
            blocks[-1].append(comment)  # the same comment, on the next line
        else:
            blocks.append([comment])
    found = []
    for block in blocks:
        joined = " ".join(text for *_, text in block)
        if block[0][3].startswith(("---", "===", "\N{BOX DRAWINGS LIGHT HORIZONTAL}" * 3)):
            continue  # a section heading, not a note
        if "torch" in joined.lower():
            row, _, code, _ = block[0]
            found.append((source.first + row - 1, owners.get(row, ""), code, joined))
    return found


def _enclosing_definitions(tree: ast.AST, prefix: str) -> dict[int, str]:
    """Line -> qualified name of the innermost function or class around it."""
    owners: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{name}.{child.name}" if name else child.name
                for line in range(child.lineno, (child.end_lineno or child.lineno) + 1):
                    owners[line] = inner
                visit(child, inner)
            else:
                visit(child, name)

    if isinstance(tree, ast.Module) and prefix and len(tree.body) == 1:
        # the source of one object: its top-level definition is ``prefix`` itself
        prefix = prefix.rpartition(".")[0]
    visit(tree, prefix)
    return owners


# ============================================================================ nodes
class source_link(nodes.Inline, nodes.TextElement):
    """A link to the highlighted source of ``modname`` at ``fullname``, made once every
    page has been read (only then is it known which names the source page anchors)."""


class kernel_ref(nodes.Inline, nodes.TextElement):
    """A link to the study page showing the kernel ``target``, resolved the same way."""


def _source_link(src: Source, text: str, optional: bool = False) -> source_link:
    """``optional``: plain text, with no warning, when the module has no source page."""
    node = source_link(text, "", nodes.literal(text, text))
    node["modname"], node["fullname"], node["optional"] = src.modname, src.qualname, optional
    return node


def _anchor_id(name: str) -> str:
    return "kernel-" + nodes.make_id(name)


def _literal(code: str, first: int) -> nodes.literal_block:
    node = nodes.literal_block(code, code)
    node["language"] = "python"
    node["linenos"] = True
    node["highlight_args"] = {"linenostart": first}
    return node


def _code_block(src: Source, start: int, stop: int, caption: list[nodes.Node]) -> nodes.container:
    """Lines ``start..stop`` (inclusive, file numbering) of ``src`` under ``caption``."""
    code = textwrap.dedent("".join(src.lines[start - src.first : stop - src.first + 1])).rstrip(
        "\n"
    )
    wrapper = nodes.container("", literal_block=True, classes=["literal-block-wrapper"])
    wrapper += nodes.caption("", "", *caption)
    wrapper += _literal(code, start)
    return wrapper


# ============================================================================ directives
class MinireDirective(SphinxDirective):
    def source(self, name: str) -> Source | None:
        try:
            src = find_source(name)
        except (NameError_, ImportError) as exc:
            logger.warning("minireg_docs: %s", exc, location=self.get_location())
            return None
        self.env.note_dependency(str(src.path))
        return src

    def autodoc(self, src: Source, extra: tuple[str, ...] = ()) -> list[nodes.Node]:
        """The object's docstring through autodoc, ``:no-index:`` (the API pages own it)."""
        if isinstance(src.obj, ModuleType):
            kind = "module"
        elif inspect.isclass(src.obj):
            kind = "class"
        elif "." in src.qualname:
            kind = "method"
        else:
            kind = "function"
        lines = [f".. auto{kind}:: {src.name}", "   :no-index:", *[f"   {x}" for x in extra]]
        holder = nodes.container()
        self.state.nested_parse(
            StringList(lines, source=self.get_source_info()[0]), self.content_offset, holder
        )
        # Keep these copies out of sphinx.ext.viewcode: it would add a "[source]" link (the
        # listing below has one) and point the source page's "[docs]" link here, at an
        # entry that has no anchor (:no-index:), instead of at the API reference.
        for signature in holder.findall(addnodes.desc_signature):
            signature.attributes.pop("module", None)
        return holder.children


class KernelDirective(MinireDirective):
    required_arguments = 1
    option_spec: ClassVar = {"no-doc": directives.flag, "with-docstring": directives.flag}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        src = self.source(name)
        if src is None:
            return []
        anchor = _anchor_id(name)
        blocks: dict[str, tuple[str, str]] = self.env.minireg_kernels  # type: ignore[attr-defined]
        for key in {name, src.fullname}:
            blocks[key] = (self.env.docname, anchor)
        section = nodes.container(classes=["minireg-kernel"], ids=[anchor])
        if "no-doc" not in self.options:
            section += self.autodoc(src)
        title = f"{src.qualname or src.modname}"
        where = f"{src.relpath}, lines {src.first}\N{EN DASH}{src.last}"
        head = [nodes.Text(f"Source of {title}: "), _source_link(src, where)]
        doc = src.docstring
        if doc is None or "with-docstring" in self.options:
            section += _code_block(src, src.first, src.last, head)
        else:
            if doc[0] > src.first:
                section += _code_block(src, src.first, doc[0] - 1, head)
            skipped = f"lines {doc[0]}\N{EN DASH}{doc[1]}: the docstring"
            skipped += ", typeset above" if "no-doc" not in self.options else ""
            if doc[1] < src.last:
                section += _code_block(
                    src, doc[1] + 1, src.last, [nodes.Text(f"(continued; {skipped})")]
                )
        return [section]


class TorchNotesDirective(MinireDirective):
    """``:whole-module:`` reads the whole file that defines each object, so that notes in
    private helpers (whatever their names) are found too."""

    required_arguments = 1
    optional_arguments = 20
    option_spec: ClassVar = {"whole-module": directives.flag, "owner-match": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        items = nodes.bullet_list(classes=["minireg-torch-notes"])
        seen: set[tuple[Path, int]] = set()
        for name in self.arguments:
            src = self.source(name)
            if src is None:
                continue
            if "whole-module" in self.options:
                src = self.source(src.modname)
                if src is None:
                    continue
            owner_match = self.options.get("owner-match")
            for line, owner, code, comment in torch_comments(src):
                if (src.path, line) in seen:
                    continue
                if owner_match and not re.search(owner_match, owner):
                    continue  # a note about another kernel in the same file
                seen.add((src.path, line))
                para = nodes.paragraph()
                link = _source_link(src, f"{Path(src.relpath).name}:{line}")
                link["fullname"] = owner or src.qualname  # anchored there if documented
                para += link
                if owner:
                    para += nodes.Text(f" in {owner}")
                if code:
                    para += nodes.Text(": ")
                    para += nodes.literal(code, code)
                para += nodes.Text(f" \N{EM DASH} {comment}")
                items += nodes.list_item("", para)
        if not items.children:
            text = "No comment in the source of " + ", ".join(self.arguments) + " mentions torch."
            return [nodes.paragraph(text, text)]
        where = "these files" if "whole-module" in self.options else "this code"
        intro = f"The comments in {where} that mention torch, where they are in the source:"
        return [nodes.paragraph(intro, intro), items]


def _fmt_ulp(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value == 0:
        return "0"
    return f"{value:.2g}" if value < 10 else f"{value:.3g}"


def _fmt_rel(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "0 (bitwise)" if value == 0 else f"{value:.1e}"


class FidelityDirective(MinireDirective):
    option_spec: ClassVar = {"family": directives.unchanged, "match": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        path = Path(self.config.minireg_fidelity_json)
        self.env.note_dependency(str(path))
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            logger.warning(
                "minireg_docs: cannot read %s (%s); draw it with `python -m plots fidelity`",
                path, exc, location=self.get_location(),
            )  # fmt: skip
            return []
        family, pattern = self.options.get("family"), self.options.get("match")
        rows = [
            row
            for row in data["rows"]
            if (family is None or row["family"] == family)
            and (pattern is None or re.search(pattern, row["label"]))
        ]
        if not rows:
            logger.warning(
                "minireg_docs: no fidelity row has family %r and a label matching %r",
                family, pattern, location=self.get_location(),
            )  # fmt: skip
            return []
        header = [
            "battery row",
            "float32 ULPs",
            "float32 rel. error",
            "float64 ULPs",
            "float64 rel. error",
        ]
        body = []
        for row in rows:
            cells = [row["label"]]
            for dtype in ("float32", "float64"):
                cell = row.get(dtype, "n/a")
                if isinstance(cell, dict):
                    cells += [_fmt_ulp(cell["ulp"]), _fmt_rel(cell["rel"])]
                else:
                    cells += [str(cell), str(cell)]
            body.append(cells)
        caption = (
            f"Measured against torch {data['torch']} (NumPy {data['numpy']}) by the run of "
            "python -m plots fidelity that drew the fidelity figure (read from "
            f"{path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path}). "
            "ULPs: worst |minireg \N{MINUS SIGN} torch| in units of the last place of the "
            "output's largest torch value; rel.: worst element-wise relative error. The "
            f"dashboard holds float32 to {data['tolerances']['float32']:g} and float64 to "
            f"{data['tolerances']['float64']:g}."
        )
        return [_table(header, body, caption)]


def _table(header: list[str], body: list[list[str]], caption: str) -> nodes.table:
    table = nodes.table(classes=["minireg-fidelity"])
    table += nodes.title(caption, caption)
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in [40] + [15] * (len(header) - 1):
        group += nodes.colspec(colwidth=width)

    def row(cells: list[str]) -> nodes.row:
        r = nodes.row()
        for text in cells:
            r += nodes.entry("", nodes.paragraph(text, text))
        return r

    group += nodes.thead("", row(header))
    group += nodes.tbody("", *[row(cells) for cells in body])
    return table


class PackageTourDirective(MinireDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        src = self.source(name)
        if src is None:
            return []
        out = [self._heading(src), *self.autodoc(src)]
        package = src.obj
        for info in pkgutil.iter_modules(getattr(package, "__path__", []), prefix=f"{name}."):
            sub = self.source(info.name)
            if sub is None:
                continue
            out += [self._heading(sub), *self.autodoc(sub, (":members:",))]
        return out

    @staticmethod
    def _heading(src: Source) -> nodes.rubric:
        """The module's name, and its file linked to its source page when it has one."""
        heading = nodes.rubric("", "", nodes.literal(src.modname, src.modname), nodes.Text(" ("))
        heading += _source_link(src, src.relpath, optional=True)
        heading += nodes.Text(")")
        return heading


# ============================================================================ roles
class SourceRole(SphinxRole):
    """``:source:`minireg.optim.adam.adam``` -> ``minireg/optim/adam.py:59``, linked."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        try:
            src = find_source(self.text)
        except (NameError_, ImportError) as exc:
            logger.warning("minireg_docs: %s", exc, location=self.get_location())
            return [nodes.literal(self.text, self.text)], []
        self.env.note_dependency(str(src.path))
        return [_source_link(src, f"{src.relpath}:{src.first}")], []


class KernelRole(SphinxRole):
    """``:kernel:`minireg.optim.adam.adam``` -> the name, linked to its study block."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        node = kernel_ref(self.text, "", nodes.literal(self.text, self.text))
        node["target"] = self.text
        return [node], []


# ============================================================================ resolving links
def _resolve_links(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    env = app.env
    modules = getattr(env, "_viewcode_modules", {})
    for node in list(doctree.findall(source_link)):
        entry = modules.get(node["modname"])
        if not entry and node.get("optional"):
            node.replace_self(node.children)
            continue
        if not entry:
            logger.warning(
                "minireg_docs: no highlighted source page for %s (nothing in it is documented)",
                node["modname"], location=node,
            )  # fmt: skip
            node.replace_self(node.children)
            continue
        uri = app.builder.get_relative_uri(docname, "_modules/" + node["modname"].replace(".", "/"))
        if node["fullname"] in entry[2]:  # viewcode anchors the names that autodoc documented
            uri += "#" + node["fullname"]
        node.replace_self(nodes.reference("", "", *node.children, refuri=uri, internal=True))
    blocks = env.minireg_kernels  # type: ignore[attr-defined]
    for node in list(doctree.findall(kernel_ref)):
        target = blocks.get(node["target"])
        if target is None:
            try:  # the same object under another name (e.g. its defining module's)
                target = blocks.get(find_source(node["target"]).fullname)
            except (NameError_, ImportError):
                target = None
        if target is None:
            logger.warning(
                "minireg_docs: no study page shows the kernel %s", node["target"], location=node
            )
            node.replace_self(node.children)
            continue
        uri = app.builder.get_relative_uri(docname, target[0]) + "#" + target[1]
        node.replace_self(nodes.reference("", "", *node.children, refuri=uri, internal=True))


def _compact_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    retann: str | None,
) -> tuple[str, str] | None:
    """On the study pages (autodoc with ``:no-index:``) drop the annotations: the full
    signature is in the source listing right below."""
    if not app.config.minireg_compact_signatures or signature is None:
        return None
    if not (getattr(options, "no_index", None) or getattr(options, "noindex", None)):
        return None
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    empty = inspect.Parameter.empty
    params = [p.replace(annotation=empty) for p in sig.parameters.values()]
    if what in ("method", "class") and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty)), ""


def _viewcode_backlink_ids(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give each documented object the anchor that its source page's "[docs]" link uses.

    sphinx.ext.viewcode links back to ``#<module>.<name>`` with one ``<module>`` per source
    file: the path under which the first object of that file was documented.  The API
    pages document ``minireg.optim.Adam`` and ``minireg.optim.adam.adam`` (both public
    paths) from the same file, so one of the two links would point at no anchor; this
    adds the missing ids.
    """
    modules = getattr(app.env, "_viewcode_modules", {})
    for signature in doctree.findall(addnodes.desc_signature):
        module, fullname = signature.get("module"), signature.get("fullname")
        if not module or not fullname or not signature["ids"]:
            continue
        try:
            real = getattr(inspect.unwrap(resolve(f"{module}.{fullname}")), "__module__", None)
        except (NameError_, ImportError):
            continue
        entry = modules.get(real)
        if entry and entry[3] != module:
            alias = f"{entry[3]}.{fullname}"
            if alias not in signature["ids"]:
                signature["ids"].append(alias)


def _env_init(app: Sphinx) -> None:
    if not hasattr(app.env, "minireg_kernels"):
        app.env.minireg_kernels = {}  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: Any, docname: str) -> None:
    blocks = env.minireg_kernels
    for key in [k for k, (doc, _) in blocks.items() if doc == docname]:
        del blocks[key]


def _merge(app: Sphinx, env: Any, docnames: Any, other: Any) -> None:
    env.minireg_kernels.update(getattr(other, "minireg_kernels", {}))


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.viewcode")
    app.add_config_value("minireg_compact_signatures", True, "env")
    app.add_config_value("minireg_fidelity_json", str(ROOT / "figures" / "fidelity.json"), "env")
    app.add_node(source_link)
    app.add_node(kernel_ref)
    app.add_directive("kernel", KernelDirective)
    app.add_directive("torch-notes", TorchNotesDirective)
    app.add_directive("fidelity", FidelityDirective)
    app.add_directive("package-tour", PackageTourDirective)
    app.add_role("source", SourceRole())
    app.add_role("kernel", KernelRole())
    app.connect("builder-inited", _env_init)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("doctree-resolved", _resolve_links)
    app.connect("doctree-resolved", _viewcode_backlink_ids)
    app.connect("autodoc-process-signature", _compact_signature)
    return {
        "version": "1",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
        "env_version": 1,
    }
