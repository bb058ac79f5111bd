"""Checks a QuestionnaireResponse against the Questionnaire it answers: every answered linkId
is an item of it, an item that does not repeat has one answer, each answer has the item's type
(``valueBoolean`` for boolean, a ``valueCoding`` among the ``answerOption``s for choice, and so
on), and a ``completed`` response answers every required item. Groups are followed into their
items. Answers with no item of the Questionnaire behind them are refused: a response that
cannot be read against its form is of no use to the aggregates."""

from __future__ import annotations

from typing import Any

from closedloop.errors import Issue

VALUE_OF = {
    "boolean": "valueBoolean",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
    "date": "valueDate",
    "dateTime": "valueDateTime",
    "time": "valueTime",
    "string": "valueString",
    "text": "valueString",
    "url": "valueUri",
    "choice": "valueCoding",
    "open-choice": "valueCoding",
    "attachment": "valueAttachment",
    "reference": "valueReference",
    "quantity": "valueQuantity",
}
CODE = "CL-6450"


def _issue(text: str, where: str) -> Issue:
    return Issue("error", "invalid", text, (where,), CODE)


def _options(item: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {
        (o["valueCoding"].get("system"), o["valueCoding"].get("code"))
        for o in item.get("answerOption") or []
        if isinstance(o, dict) and isinstance(o.get("valueCoding"), dict)
    }


def _check_answer(item: dict[str, Any], answer: Any, where: str) -> list[Issue]:
    kind = str(item.get("type"))
    expected = VALUE_OF.get(kind)
    if not isinstance(answer, dict) or expected is None:
        return [_issue(f"Item {item['linkId']} takes no answer", where)]
    values = [k for k in answer if k.startswith("value")]
    if kind == "open-choice" and values == ["valueString"]:
        return []
    if values != [expected]:
        return [
            _issue(
                f"Item {item['linkId']} ({kind}) is answered with {expected}, not "
                f"{', '.join(values) or 'nothing'}",
                where,
            )
        ]
    options = _options(item)
    if kind in ("choice", "open-choice") and options:
        coding = answer[expected]
        if (coding.get("system"), coding.get("code")) not in options:
            codes = ", ".join(sorted(str(c) for _, c in options))
            return [
                _issue(
                    f"Item {item['linkId']} is answered with one of its options ({codes})", where
                )
            ]
    return []


def check_items(
    defined: list[dict[str, Any]], given: Any, where: str, completed: bool
) -> list[Issue]:
    by_id = {i["linkId"]: i for i in defined if isinstance(i, dict) and "linkId" in i}
    issues: list[Issue] = []
    seen: set[str] = set()
    for n, answered in enumerate(given if isinstance(given, list) else []):
        here = f"{where}.item[{n}]"
        link_id = (answered or {}).get("linkId") if isinstance(answered, dict) else None
        item = by_id.get(str(link_id))
        if item is None:
            issues.append(_issue(f"The Questionnaire has no item {link_id!r}", f"{here}.linkId"))
            continue
        if link_id in seen and not item.get("repeats"):
            issues.append(_issue(f"Item {link_id} is answered twice", here))
        seen.add(str(link_id))
        answers = answered.get("answer") or []
        if len(answers) > 1 and not item.get("repeats"):
            issues.append(_issue(f"Item {link_id} takes one answer", f"{here}.answer"))
        for a, answer in enumerate(answers):
            issues += _check_answer(item, answer, f"{here}.answer[{a}]")
        if item.get("type") == "group":
            issues += check_items(item.get("item") or [], answered.get("item"), here, completed)
        elif completed and item.get("required") and not answers:
            issues.append(_issue(f"Item {link_id} is required", f"{here}.answer"))
    if completed:
        for link_id, item in by_id.items():
            if item.get("required") and link_id not in seen:
                issues.append(_issue(f"Item {link_id} is required", f"{where}.item"))
    return issues


def check_response(questionnaire: dict[str, Any], response: dict[str, Any]) -> list[Issue]:
    completed = response.get("status") == "completed"
    return check_items(
        questionnaire.get("item") or [], response.get("item"), "QuestionnaireResponse", completed
    )
