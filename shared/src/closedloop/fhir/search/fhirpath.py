"""A compiled subset of FHIRPath: just enough to evaluate the expressions of the standard search
parameters over plain FHIR JSON dicts, on every write.

Why not a full engine: indexing runs for each created/updated resource, and the search
parameter expressions use a handful of forms. Each expression is parsed once into a chain of
plain closures over ``list[Node]``; anything outside the subset makes ``compile_expression``
return None and the caller treats the parameter as unsupported rather than indexing it wrongly.

Supported: top-level unions ``a | b`` (alternatives rooted at another type are dropped), dotted
paths with arrays flattened at every step, choice elements (``value`` finds ``valueQuantity``,
``valueString``, ...), ``.as(T)``/``.ofType(T)``/infix ``as T``, parenthesised sub-expressions,
and ``.where(...)`` with ``resolve() is T``, ``path = literal``, ``path != literal``, ``and``,
``or``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from closedloop.fhir.search.index.reference import reference_type


class Node(NamedTuple):
    """One value reached by a path; ``type`` is the FHIR type when known (from a choice-element
    suffix or ``as``), else None."""

    value: Any
    type: str | None


Evaluator = Callable[[dict[str, Any]], list[Node]]
Step = Callable[[list[Node]], list[Node]]
Predicate = Callable[[Any], bool]


class Unsupported(Exception):
    """The expression uses FHIRPath outside the compiled subset."""


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Base names of the choice elements (``xxx[x]``) of FHIR R4/R4B. Only for these names does a
# missing key trigger a scan for ``name + Type`` keys, so ordinary absent elements cost nothing.
CHOICE_NAMES = frozenset(
    _words(
        """
    abatement additive age allowed amount answer asNeeded author born bounds characteristic
    chargeItem citeAs code collected concentration content created date deceased
    defaultValue definition detail diagnosis dose doseNumber due duration effective entity
    event example fastingStatus fixed identified indication item legallyBinding location
    manufacturer maxValue medication minValue minimumVolume module multipleBirth name
    occurred occurrence offset onset participantEffective pattern performed period
    presentation probability procedure product quantity rate reported scheduled seriesDoses
    serviced source start statusReason strength studyEffective subject substance
    substanceDefinition target time timing topic used value when
"""
    )
)

_PRIMITIVES = _words(
    """
    base64Binary boolean canonical code date dateTime decimal id instant integer markdown
    oid positiveInt string time unsignedInt uri url uuid
"""
)
_COMPLEX = _words(
    """
    Address Age Annotation Attachment CodeableConcept CodeableReference Coding ContactDetail
    ContactPoint Contributor Count DataRequirement Distance Dosage Duration Expression
    HumanName Identifier Meta Money ParameterDefinition Period Quantity Range Ratio
    RatioRange Reference RelatedArtifact SampledData Signature Timing TriggerDefinition
    UsageContext
"""
)
# Choice-key suffix → FHIR type name (``DateTime`` → ``dateTime``, ``Quantity`` → ``Quantity``).
_SUFFIX_TYPES: dict[str, str] = {p[0].upper() + p[1:]: p for p in _PRIMITIVES}
_SUFFIX_TYPES.update({c: c for c in _COMPLEX})

_ROOTS = ("Resource", "DomainResource")


def _norm_type(name: str) -> str:
    """Type names compare with the first letter case-folded (``DateTime`` ≡ ``dateTime``)."""
    return name[:1].lower() + name[1:]


def _canonical_type(name: str) -> str:
    return _SUFFIX_TYPES.get(name[:1].upper() + name[1:], name)


# ---------------------------------------------------------------------------------------------
# Steps. Element navigation runs on raw JSON values for as long as no type is needed, and only
# the final step (or a fused ``name.as(T)``) wraps values in Nodes: most parameters are one or
# two plain names, and skipping per-value Node creation halves the cost of an extraction.

RawStep = Callable[[list[Any]], list[Any]]
TypedStep = Callable[[list[Any]], list[Node]]  # raw values in, Nodes out

_new = tuple.__new__  # Node(value, type) without the NamedTuple __new__ wrapper: ~2.5x faster


def _emit(out: list[Node], value: Any, node_type: str | None) -> None:
    if type(value) is list:
        for item in value:
            if item is not None:  # nulls pad primitive arrays that carry extensions
                out.append(_new(Node, (item, node_type)))
    else:
        out.append(_new(Node, (value, node_type)))


def _raw_name(name: str) -> RawStep:
    """Child elements named ``name`` (choice elements included), flattened, types dropped."""
    size, choice = len(name), name in CHOICE_NAMES

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if type(value) is not dict:
                continue
            found = value.get(name)
            if found is None:
                if choice:
                    for key, found in value.items():
                        if len(key) > size and key.startswith(name) and key[size:] in _SUFFIX_TYPES:
                            if type(found) is list:
                                out.extend(found)
                            else:
                                out.append(found)
                continue
            if type(found) is list:
                out.extend(found)
            else:
                out.append(found)
        return [v for v in out if v is not None] if None in out else out

    return step


def _typed_name(name: str) -> TypedStep:
    """Child elements named ``name`` as Nodes, typed by their choice suffix when they have one."""
    size, choice = len(name), name in CHOICE_NAMES

    def step(values: list[Any]) -> list[Node]:
        out: list[Node] = []
        for value in values:
            if type(value) is not dict:
                continue
            found = value.get(name)
            if found is not None:
                _emit(out, found, None)
            elif choice:
                for key, found in value.items():
                    if len(key) > size and key.startswith(name):
                        node_type = _SUFFIX_TYPES.get(key[size:])
                        if node_type is not None:
                            _emit(out, found, node_type)
        return out

    return step


def _typed_choice(name: str, type_name: str) -> TypedStep:
    """``name.as(T)`` fused into a direct lookup of ``nameT``; a plain ``name`` key (an element
    that is not a choice, so of unknown type) is kept, as ``as`` keeps untyped nodes."""
    key = name + type_name[:1].upper() + type_name[1:]
    node_type = _canonical_type(type_name)

    def step(values: list[Any]) -> list[Node]:
        out: list[Node] = []
        for value in values:
            if type(value) is dict:
                found = value.get(key)
                if found is not None:
                    _emit(out, found, node_type)
                else:
                    found = value.get(name)
                    if found is not None:
                        _emit(out, found, None)
        return out

    return step


def _untyped(values: list[Any]) -> list[Node]:
    return [_new(Node, (v, None)) for v in values]


def _on_nodes(typed: TypedStep) -> Step:
    return lambda nodes: typed([n[0] for n in nodes])


def _as_step(type_name: str) -> Step:
    wanted = _norm_type(type_name)

    def step(nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if n[1] is None or _norm_type(n[1]) == wanted]

    return step


def _raw_where(predicate: Predicate) -> RawStep:
    return lambda values: [v for v in values if predicate(v)]


def _where_step(predicate: Predicate) -> Step:
    return lambda nodes: [n for n in nodes if predicate(n[0])]


# ---------------------------------------------------------------------------------------------
# Predicates inside where(): evaluated against one node's value


def _values(value: Any, path: tuple[str, ...]) -> list[Any]:
    current = [value]
    for name in path:
        nxt: list[Any] = []
        for item in current:
            if type(item) is dict:
                found = item.get(name)
                if type(found) is list:
                    nxt.extend(found)
                elif found is not None:
                    nxt.append(found)
        current = nxt
    return current


def _same(a: Any, b: Any) -> bool:
    return a == b and (type(a) is bool) == (type(b) is bool)


def _compare(path: tuple[str, ...], literal: Any, equal: bool) -> Predicate:
    if len(path) == 1:
        name = path[0]
        if equal:
            return lambda v: type(v) is dict and _same(v.get(name), literal)
    if equal:
        return lambda v: any(_same(x, literal) for x in _values(v, path))
    return lambda v: bool(found := _values(v, path)) and not any(_same(x, literal) for x in found)


def _is_type(type_name: str) -> Predicate:
    return lambda v: reference_type(v) == type_name


def _any_of(preds: list[Predicate]) -> Predicate:
    return lambda v: any(p(v) for p in preds)


def _all_of(preds: list[Predicate]) -> Predicate:
    return lambda v: all(p(v) for p in preds)


# ---------------------------------------------------------------------------------------------
# Parsing

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)|(?P<op>!=|<=|>=|[().,|=<>~+\-*/&\[\]$%{}]))",
    re.ASCII,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos:].strip():
                raise Unsupported(f"unexpected text at {pos}: {text[pos:]!r}")
            break
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        if kind == "id" and value[0] == "`":
            value = value[1:-1]
        tokens.append((kind, value))
        pos = m.end()
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), literal[1:-1])


class _Parser:
    def __init__(self, text: str, resource_type: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.roots = frozenset((resource_type, *_ROOTS))
        self.resource_type = resource_type

    # -- token helpers
    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def at(self, value: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok[1] == value and tok[0] in ("op", "id")

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            raise Unsupported(f"expected {value or kind} at token {self.pos}, got {tok}")
        self.pos += 1
        return tok[1]

    # -- expressions
    def parse(self) -> Evaluator:
        evaluator = self.union()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()}")
        return evaluator

    def union(self) -> Evaluator:
        alternatives = [self.as_expr()]
        while self.at("|"):
            self.pos += 1
            alternatives.append(self.as_expr())
        return _union(alternatives)

    def as_expr(self) -> Evaluator:
        start, steps = self.postfix()
        if self.at("as"):
            self.pos += 1
            steps.append(("as", self.take("id")))
        elif self.at("is"):
            raise Unsupported("'is' outside where(resolve() is T)")
        return _chain(start, steps, self.resource_type)

    def postfix(self) -> tuple[Evaluator | None, list[tuple[Any, ...]]]:
        start = self.primary()
        steps: list[tuple[Any, ...]] = []
        while self.at("."):
            self.pos += 1
            name = self.take("id")
            if self.at("("):
                self.pos += 1
                steps.append(self.function(name))
            else:
                steps.append(("name", name))
        if self.at("["):
            raise Unsupported("indexer")
        return start, steps

    def primary(self) -> Evaluator | None:
        """None stands for the resource itself; a sub-expression returns its evaluator."""
        if self.at("("):
            self.pos += 1
            inner = self.union()
            self.take("op", ")")
            return inner
        name = self.take("id")
        if self.at("("):
            raise Unsupported(f"function {name}() at the root")
        if name in self.roots:
            return None
        if name[:1].isupper():  # another resource type: this branch yields nothing
            return _nothing
        raise Unsupported(f"path not rooted at a type: {name}")

    def function(self, name: str) -> tuple[Any, ...]:
        if name in ("as", "ofType"):
            type_name = self.take("id")
            self.take("op", ")")
            return ("as", type_name)
        if name == "where":
            predicate = self.condition()
            self.take("op", ")")
            return ("where", predicate)
        raise Unsupported(f"function {name}()")

    # -- where() conditions
    def condition(self) -> Predicate:
        preds = [self.conjunction()]
        while self.at("or"):
            self.pos += 1
            preds.append(self.conjunction())
        return preds[0] if len(preds) == 1 else _any_of(preds)

    def conjunction(self) -> Predicate:
        preds = [self.atom()]
        while self.at("and"):
            self.pos += 1
            preds.append(self.atom())
        return preds[0] if len(preds) == 1 else _all_of(preds)

    def atom(self) -> Predicate:
        if self.at("("):
            self.pos += 1
            pred = self.condition()
            self.take("op", ")")
            return pred
        if self.at("resolve") and self.at("(", 1) and self.at(")", 2) and self.at("is", 3):
            self.pos += 4
            return _is_type(self.take("id"))
        path = [self.take("id")]
        while self.at("."):
            self.pos += 1
            path.append(self.take("id"))
        if self.at("(") or path[0] in ("$this", "true", "false"):
            raise Unsupported("function or literal on the left of a comparison")
        if self.at("="):
            equal = True
        elif self.at("!="):
            equal = False
        else:
            raise Unsupported(f"condition {self.peek()}")
        self.pos += 1
        return _compare(tuple(path), self.literal(), equal)

    def literal(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise Unsupported("missing literal")
        kind, value = tok
        self.pos += 1
        if kind == "str":
            return _unquote(value)
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "id" and value in ("true", "false"):
            return value == "true"
        raise Unsupported(f"literal {value!r}")


def _nothing(_resource: dict[str, Any]) -> list[Node]:
    return []


def _union(alternatives: list[Evaluator]) -> Evaluator:
    if len(alternatives) == 1:
        return alternatives[0]
    evaluators = tuple(alternatives)

    def union(resource: dict[str, Any]) -> list[Node]:
        out: list[Node] = []
        for evaluate in evaluators:
            out.extend(evaluate(resource))
        return out

    return union


def _plan(
    steps: list[tuple[Any, ...]], raw_allowed: bool
) -> tuple[tuple[RawStep, ...], TypedStep | None, tuple[Step, ...]]:
    """Split the operations into a raw-value prefix, the step that first produces Nodes, and
    the steps on Nodes after it. ``name`` + ``as(T)`` fuse into one keyed lookup."""
    raw: list[RawStep] = []
    convert: TypedStep | None = None
    typed: list[Step] = []
    in_raw = raw_allowed
    i = 0
    while i < len(steps):
        op = steps[i]
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        producer: TypedStep | None = None
        if op[0] == "name" and nxt is not None and nxt[0] == "as":
            producer = _typed_choice(op[1], nxt[1])
            i += 1
        elif op[0] == "name" and nxt is None:
            producer = _typed_name(op[1])
        elif op[0] == "name":
            if in_raw:
                raw.append(_raw_name(op[1]))
            else:
                producer = _typed_name(op[1])
        elif op[0] == "where":
            if in_raw:
                raw.append(_raw_where(op[1]))
            else:
                typed.append(_where_step(op[1]))
        else:  # "as" on values of unknown type keeps them; on typed nodes it filters
            if in_raw:
                convert, in_raw = _untyped, False
            typed.append(_as_step(op[1]))
        if producer is not None:
            if in_raw:
                convert, in_raw = producer, False
            else:
                typed.append(_on_nodes(producer))
        i += 1
    return tuple(raw), convert, tuple(typed)


def _chain(start: Evaluator | None, steps: list[tuple[Any, ...]], resource_type: str) -> Evaluator:
    """One alternative: from the resource (``start`` None) or a sub-expression, then steps."""
    if start is not None:
        _raw, _convert, node_steps = _plan(steps, raw_allowed=False)
        if not node_steps:
            return start
        begin = start

        def from_sub(resource: dict[str, Any]) -> list[Node]:
            nodes = begin(resource)
            for step in node_steps:
                if not nodes:
                    break
                nodes = step(nodes)
            return nodes

        return from_sub

    raw, convert, node_steps = _plan(steps, raw_allowed=True)
    if convert is None:  # only raw steps, ending in where(): the root itself or its elements
        raw_only = raw
        root_type = None if any(op[0] == "name" for op in steps) else resource_type

        def root_values(resource: dict[str, Any]) -> list[Node]:
            values: list[Any] = [resource]
            for step in raw_only:
                values = step(values)
            return [_new(Node, (v, root_type)) for v in values]

        return root_values
    final = convert
    if not raw and not node_steps:
        return lambda resource: final([resource])

    def from_resource(resource: dict[str, Any]) -> list[Node]:
        values: list[Any] = [resource]
        for step in raw:
            values = step(values)
            if not values:
                return []
        nodes = final(values)
        for step in node_steps:
            if not nodes:
                break
            nodes = step(nodes)
        return nodes

    return from_resource


# ---------------------------------------------------------------------------------------------
# Entry point

_ROOT_RE = re.compile(r"\s*\(*\s*`?([A-Za-z_][A-Za-z0-9_]*)")


def split_union(expression: str) -> list[str]:
    """Split at top-level ``|`` (outside parentheses and string literals)."""
    parts: list[str] = []
    depth, start, quote = 0, 0, False
    i = 0
    while i < len(expression):
        c = expression[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == "'":
                quote = False
        elif c == "'":
            quote = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
        i += 1
    parts.append(expression[start:].strip())
    return parts


@lru_cache(maxsize=4096)
def compile_expression(expression: str, resource_type: str) -> Evaluator | None:
    """Compile a search parameter's FHIRPath for one resource type.

    Keeps only the union alternatives rooted at ``resource_type``, ``Resource`` or
    ``DomainResource``; returns None if none remain or any kept one is outside the subset.
    The result maps a resource dict to the list of Nodes the expression selects.
    """
    roots = (resource_type, *_ROOTS)
    kept = []
    for alternative in split_union(expression):
        m = _ROOT_RE.match(alternative)
        if m is not None and m.group(1) in roots:
            kept.append(alternative)
    if not kept:
        return None
    try:
        return _union([_Parser(alt, resource_type).parse() for alt in kept])
    except Unsupported:
        return None
