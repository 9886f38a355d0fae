"""User strings (file names, paths, error messages) in Qt widgets that would read them as rich text.

Qt renders a label's, a tooltip's or a message box's text as HTML when it *looks* like HTML
(``Qt.mightBeRichText``): a photo named ``<h1>x</h1>.png`` would show as a heading, an ``<img>``
would load a local file. :func:`rich_escape` makes a user string safe inside rich text we build;
:func:`plain_tooltip` makes a multi-line tooltip show its text as written.
"""

from __future__ import annotations

import html


def rich_escape(text: object) -> str:
    """``text`` for inside Qt rich text: shown as its characters."""
    return html.escape(str(text), quote=True)


def plain_tooltip(text: object) -> str:
    """A tooltip that shows ``text`` as written, line breaks kept, whatever it holds."""
    return f"<p style='white-space:pre'>{rich_escape(text)}</p>"
