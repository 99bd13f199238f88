"""The little markup our own texts use (question prompts, the opening): paragraphs and **bold**.

Everything is escaped first, so text written by anyone else renders as text. Full, sanitized
Markdown for the interviewer's messages is a later step.
"""

import re

from django import template
from django.template.defaultfilters import linebreaks_filter
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
BOLD = re.compile(r"\*\*(.+?)\*\*")


@register.filter
def light_markup(text: str) -> SafeString:
    escaped = BOLD.sub(r"<strong>\1</strong>", escape(text))
    return mark_safe(linebreaks_filter(escaped, autoescape=False))  # noqa: S308 (escaped above)
