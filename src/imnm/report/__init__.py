"""Renderings of an assessment for people: plain text and Markdown."""

from imnm.report.text import render_markdown, render_text

__all__ = ["render_markdown", "render_text"]
