"""Widgets of the dashboard's own forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe


class LongSelect(forms.Select):
    """A select of many options (the ~600 IANA time zones), written in one pass. Django's
    `Select` renders each option through a template include of its own: about 90 ms for the
    zones, three quarters of the schedule editor's time on every load. Same markup and
    escaping (a test compares the two on hostile values), options built by Django's own
    `optgroups`; about 3.5 ms for the zones."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group_name, options, _ in widget["optgroups"]:
            if group_name:
                parts.append(f'<optgroup label="{conditional_escape(group_name)}">')
            parts.extend(
                f'<option value="{conditional_escape(o["value"])}"{_attributes(o["attrs"])}>'
                f"{conditional_escape(o['label'])}</option>"
                for o in options
            )
            if group_name:
                parts.append("</optgroup>")
        return format_html(
            '<select name="{}"{}>\n{}\n</select>',
            widget["name"],
            flatatt(widget["attrs"]),
            mark_safe("\n".join(parts)),  # noqa: S308 - every part escaped above
        )


def _attributes(attrs: dict[str, Any]) -> str:
    """An option's attributes (`selected` on one of them, none on the others)."""
    return flatatt(attrs) if attrs else ""
