"""Small built-in tasks (gymnax environments) registered by id in :mod:`jaxpg.envs`."""
