"""SMART scopes into rules (no database)."""

from __future__ import annotations

import pytest
from closedloop.auth.scopes import INTERACTION_LETTER, Scope, parse_scope, rules_from


class TestParseScope:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("system/Task.cruds", Scope("system", "Task", "cruds", "")),
            ("system/Task.rs", Scope("system", "Task", "rs", "")),
            ("user/*.rs", Scope("user", "*", "rs", "")),
            ("patient/Observation.r", Scope("patient", "Observation", "r", "")),
            ("system/Task.read", Scope("system", "Task", "rs", "")),  # v1
            ("system/Task.write", Scope("system", "Task", "cud", "")),
            ("system/*.*", Scope("system", "*", "cruds", "")),
            ("system/Task.rs?status=requested", Scope("system", "Task", "rs", "?status=requested")),
        ],
    )
    def test_smart_forms(self, text: str, expected: Scope) -> None:
        assert parse_scope(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "openid",
            "launch",
            "system/Task",
            "system/Task.",
            "system/Task.rc",
            "system/Task.rr",
            "system/task.r",
            "admin/Task.r",
            "system/Task.x",
            "system/Task.cruds extra",
        ],
    )
    def test_not_a_resource_scope(self, text: str) -> None:
        assert parse_scope(text) is None


class TestRules:
    def test_letters_per_type_and_wildcard(self) -> None:
        rules = rules_from(["system/Task.rs", "system/*.c", "openid"])
        assert rules.allows("Task", "r") and rules.allows("Task", "s")
        assert not rules.allows("Task", "u")
        assert rules.allows("Patient", "c") and not rules.allows("Patient", "r")

    def test_patient_and_restricted_scopes_grant_nothing(self) -> None:
        """They narrow to a compartment or a query this server cannot apply yet: honouring
        them as plain grants would give more than they say."""
        rules = rules_from(["patient/*.cruds", "system/Task.rs?status=requested"])
        assert not any(rules.allows("Task", letter) for letter in "cruds")

    def test_user_scopes_grant(self) -> None:
        assert rules_from(["user/Task.r"]).allows("Task", "r")

    def test_every_letter_used(self) -> None:
        assert set(INTERACTION_LETTER.values()) == set("cruds")
