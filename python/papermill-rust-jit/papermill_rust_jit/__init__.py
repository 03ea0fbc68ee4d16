"""papermill's parameters for Rust notebooks (kernel `rust-jit`, language `rust`).

papermill writes the parameters it is given as a cell of the notebook's language, after the cell
tagged `parameters`; it knows no Rust and has no entry point for other translators. This package
registers `RustTranslator` for the kernel `rust-jit` and the language `rust`: when installed, a hook
(`papermill_rust_jit.pth`) does it as papermill loads its translators, so the `papermill` command and
`papermill.execute_notebook` work unchanged; `import papermill_rust_jit` does it too.

Each parameter becomes `let NAME = VALUE;` (a new binding, as Rust shadows the one in the parameters
cell), with the value's Rust type written out, since a Rust literal alone does not say it: integers
>= 0 are `usize` (sizes, counts, threads), negative ones `i64`, floats `f64`, booleans `bool`, strings
`&str`, lists `vec![...]` of the same, `None` is `None::<()>`. Dicts are refused.
"""
from __future__ import annotations

import math
import re

from papermill.exceptions import PapermillException
from papermill.models import Parameter
from papermill.translators import Translator, papermill_translators

__all__ = ["RustTranslator", "register"]

KERNEL_NAME = "rust-jit"
LANGUAGE = "rust"


class RustTranslator(Translator):
    """`let NAME = VALUE;` for Rust (see the module docs)."""

    PARAMETER = re.compile(r"^\s*let\s+(?:mut\s+)?(?P<name>[A-Za-z_]\w*)\s*(?::\s*(?P<type>[^=]+?))?\s*=\s*(?P<value>.+?);\s*(?://\s*(?P<help>.*))?$")

    @classmethod
    def translate_escaped_str(cls, str_val):
        text = str(str_val).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return f'"{text}"'

    @classmethod
    def translate_none(cls, val):
        return "None::<()>"

    @classmethod
    def translate_int(cls, val):
        return f"{val}usize" if val >= 0 else f"{val}i64"

    @classmethod
    def translate_float(cls, val):
        if math.isnan(val):
            return "f64::NAN"
        if math.isinf(val):
            return "f64::INFINITY" if val > 0 else "f64::NEG_INFINITY"
        text = repr(float(val))
        return f"{text}f64" if ("e" in text or "." in text) else f"{text}.0f64"

    @classmethod
    def translate_bool(cls, val):
        return "true" if val else "false"

    @classmethod
    def translate_list(cls, val):
        items = [cls.translate(v) for v in val]
        # One element type: integers of mixed sign are all i64.
        if any(v.endswith("i64") for v in items):
            items = [v.replace("usize", "i64") for v in items]
        if not items:
            return "Vec::<()>::new()"
        return f"vec![{', '.join(items)}]"

    @classmethod
    def translate_dict(cls, val):
        raise PapermillException("a dict parameter has no Rust translation here: pass its entries as parameters of their own")

    @classmethod
    def comment(cls, cmt_str):
        return f"// {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise PapermillException(f"parameter name {name!r} is not a Rust identifier")
        return f"let {name} = {str_val};"

    SUFFIX = re.compile(r"^-?[\d_.]+(?:e-?\d+)?(?P<suffix>[iu](?:8|16|32|64|128|size)|f32|f64)$")

    @classmethod
    def infer_type(cls, value: str) -> str:
        """The type of a literal as written (`100usize`, `vec![1u8, 2]`, `0.5`, `true`, `"x"`)."""
        value = value.strip()
        if value.startswith("vec![") and value.endswith("]"):
            inner = value[5:-1].split(",")[0].strip()
            return f"Vec<{cls.infer_type(inner)}>" if inner else "Vec<_>"
        match = cls.SUFFIX.match(value)
        if match:
            return match.group("suffix")
        if value in ("true", "false"):
            return "bool"
        if value.startswith('"'):
            return "&str"
        if re.fullmatch(r"-?\d[\d_]*\.[\d_]*(e-?\d+)?", value):
            return "f64"
        if re.fullmatch(r"-?\d[\d_]*", value):
            return "i32"
        return "None"

    @classmethod
    def inspect(cls, parameters_cell):
        """The `let` items of the parameters cell (for `papermill --help-notebook`)."""
        found = []
        for line in parameters_cell.source.splitlines():
            match = cls.PARAMETER.match(line)
            if match:
                found.append(Parameter(
                    name=match.group("name"),
                    inferred_type_name=(match.group("type") or cls.infer_type(match.group("value"))).strip(),
                    default=match.group("value").strip(),
                    help=(match.group("help") or "").strip(),
                ))
        return found


def register() -> None:
    papermill_translators.register(KERNEL_NAME, RustTranslator)
    papermill_translators.register(LANGUAGE, RustTranslator)


register()
