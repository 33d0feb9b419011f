"""The LLM fine-tuning rungs of the ladder, one module each: their losses and update kinds.

Each module holds what its estimator adds to the built-ins (a surrogate, an
update kind, a weight rule); its row in :data:`jaxpg.estimators.REGISTRY`
names them. The expectation of each estimator at θ_old is stated in its
module's docstring and checked by enumeration in ``tests/test_llm.py``.
These modules import only :mod:`jaxpg.losses` and :mod:`jaxpg.updates` at
import time (the registry imports them).
"""
