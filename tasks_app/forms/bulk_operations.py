"""The typed confirmation of a bulk operation over everything a filter matches."""

from __future__ import annotations

from django import forms


class BulkOperationForm(forms.Form):
    # The count the operator read, typed back; bounded, so a huge number is a form error.
    confirm_count = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=10**9,
        label="Type the number of runs to confirm",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
