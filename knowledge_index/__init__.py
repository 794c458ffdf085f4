"""Knowledge index: FAQ retrieval (dense + lexical) with an out-of-scope decline.

Import the submodules directly (``knowledge_index.retriever``, ``knowledge_index.article``...);
this package module stays empty so importing it loads no model and no heavy library.
"""
