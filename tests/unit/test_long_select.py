"""`LongSelect` (the schedule editor's time zone list) writes what Django's `Select` writes:
the same elements, attributes, selection and escaping, only faster."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django import forms
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from tasks_app.forms.schedules import ScheduleForm
from tasks_app.forms.widgets import LongSelect

CHOICES: list[Any] = [
    ("", "Pick <one>"),
    ("a&b", 'A & "B"'),
    ("Europe/Berlin", "Europe/Berlin"),
    (7, "seven"),
    ("safe", mark_safe("<b>marked safe</b>")),  # HTML the caller vouches for: kept as it is
    ("lazy", gettext_lazy("a <lazy> label")),
    ("Group <g>", [("x", "X"), ("y", "Y <y>")]),
]
ATTRS: list[dict[str, Any] | None] = [
    None,
    {"id": "id_tz", "required": True, "aria-invalid": "true", "disabled": False, "data-x": '"'},
]


class Markup(HTMLParser):
    """Elements with their attributes (order aside) and the text between them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[Any] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append((tag, sorted(attrs, key=lambda a: a[0])))

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(f"/{tag}")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.parts.append(data)


@pytest.mark.parametrize("value", ["Europe/Berlin", None, "", "x", "a&b", 7, "no such"])
@pytest.mark.parametrize("attrs", ATTRS)
def test_it_writes_what_djangos_select_writes(value: Any, attrs: dict[str, Any] | None) -> None:
    django = forms.Select(choices=CHOICES).render("timezone", value, attrs)
    fast = LongSelect(choices=CHOICES).render("timezone", value, attrs)

    assert Markup(fast).parts == Markup(django).parts


def test_the_editor_lists_every_zone_and_selects_the_schedules() -> None:
    form = ScheduleForm(initial={"timezone": "America/New_York"})

    parts = Markup(str(form["timezone"])).parts

    options = [
        attrs for tag, attrs in (p for p in parts if isinstance(p, tuple)) if tag == "option"
    ]
    assert len(options) > 400  # every IANA zone
    assert [a for a in options if ("selected", None) in a] == [
        [("selected", None), ("value", "America/New_York")]
    ]
