"""The job page's concurrency-limit form: a whole number, blank for no limit, or back to the
code's value. The service validates the number (the same rule as the API's)."""

from __future__ import annotations

from django import forms

ACTION = "concurrency"


class ConcurrencyForm(forms.Form):
    concurrency = forms.CharField(
        required=False,
        max_length=20,
        label="At most this many runs at once",
        help_text="A whole number from 1; empty for no limit. Applies within a few seconds.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 6}),
    )
    use_code_default = forms.BooleanField(
        required=False, label="Use the code's value instead (@job(concurrency=…))"
    )
