"""The cited knowledge base: data files under ``data/`` and the typed loader that checks them.

``load_knowledge()`` returns the shipped knowledge, loaded once per process.
"""

from imnm.knowledge._loader import FILES, Knowledge, load_from, load_knowledge
from imnm.knowledge._models import Status

__all__ = ["FILES", "Knowledge", "Status", "load_from", "load_knowledge"]
