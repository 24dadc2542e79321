"""The report's Jinja environment: templates from ``templates/``, every value autoescaped."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["render"]

_ENV = Environment(loader=PackageLoader("ponder.reporting", "templates"), autoescape=select_autoescape(["html"]))


def render(template: str, **values) -> str:
    """Render one of the report templates.

    Args:
        template: File name inside ``templates/`` (``.html`` names are autoescaped).
        **values: The template's variables.

    Returns:
        The rendered text.
    """
    return _ENV.get_template(template).render(**values)
