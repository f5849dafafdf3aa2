"""The established libraries' optimizers as searchers (ask/tell), one small adapter module per library.

Each module imports its library only when a searcher is built, so ``search`` imports without them;
:data:`search.registry.PEERS` names them. Install the libraries with ``pip install ".[peers]"``.
"""
